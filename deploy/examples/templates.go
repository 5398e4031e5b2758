package examples

// The Deployments, as text/template with [[ ]] delimiters.

const statusAPIBody = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: [[.Lease]]
  namespace: [[.Namespace]]
spec:
  replicas: 3
  selector:
    matchLabels: {app: [[.Lease]]}
  template:
    metadata:
      labels: {app: [[.Lease]]}
    spec:
      serviceAccountName: [[.SA]]
      initContainers:
        # A native sidecar (Kubernetes 1.29+): started before the application
        # and stopped after it. On older clusters, move it to containers.
        - name: incumbent
          image: [[.Image]]
          restartPolicy: Always
          args:
            - run
            - --lease=[[.Lease]]
            # On all interfaces so that the kubelet's probes and Prometheus
            # reach it; the default is 127.0.0.1:4040. The control endpoint
            # (acknowledgements, withdraw) stays on 127.0.0.1:4041, which
            # only this pod's containers reach.
            - --http-addr=:4040
          env:
[[.PodEnv]]
          ports:
            - {name: status, containerPort: 4040}
          # /healthz answers from the first moment, 200 while the sidecar
          # works as it should, including while it waits for the API server
          # (the body says why): the application starts once the sidecar
          # serves, and a control-plane blip never restarts the sidecar.
          startupProbe:
            httpGet: {path: /healthz, port: status}
            periodSeconds: 1
            failureThreshold: 30
          livenessProbe:
            httpGet: {path: /healthz, port: status}
          # When the pod is deleted the kubelet runs this at once, while it
          # signals the sidecar only after the application has exited: the
          # sidecar steps down now (the application is told, gets --grace or
          # acknowledges), and the next leader does not wait for this pod's
          # shutdown. No permission is needed.
          lifecycle:
            preStop:
              exec: {command: [/incumbent, withdraw]}
          resources:
            requests: {cpu: 5m, memory: 16Mi}
            limits: {memory: 64Mi}
      containers:
        - name: app
          image: registry.example/app:latest
          env:
            # The application reads /v1/status or follows /v1/watch here,
            # acts only while isLeader is true, and stops at once when it
            # turns false. The lease is released --grace (4s) later, or as
            # soon as it POSTs /v1/stepped-down to the control endpoint.
            - name: LEADER_ELECTOR_URL
              value: http://127.0.0.1:4040
            - name: INCUMBENT_CONTROL_URL
              value: http://127.0.0.1:4041
`

const leaderPortBody = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: [[.Lease]]
  namespace: [[.Namespace]]
spec:
  replicas: 2
  # Only the leader is ever Ready: a rolling update can only progress by
  # taking an old pod away first.
  strategy:
    rollingUpdate: {maxSurge: 0, maxUnavailable: 1}
  selector:
    matchLabels: {app: [[.Lease]]}
  template:
    metadata:
      labels: {app: [[.Lease]]}
    spec:
      serviceAccountName: [[.SA]]
      terminationGracePeriodSeconds: 30
      containers:
        - name: app
          image: registry.example/app:latest
          ports:
            - {name: http, containerPort: 8080}
        - name: incumbent
          image: [[.Image]]
          args:
            - run
            - --lease=[[.Lease]]
            - --http-addr=:4040
            # Open only while leading.
            - --leader-addr=:8081
            # The application does not act on leadership itself (only the
            # leader is Ready, so only it gets traffic): release at once.
            - --await-app=false
          env:
[[.PodEnv]]
          ports:
            - {name: status, containerPort: 4040}
            - {name: leader, containerPort: 8081}
          readinessProbe:
            httpGet: {path: /, port: leader}
            periodSeconds: 2
            failureThreshold: 1
          livenessProbe:
            httpGet: {path: /healthz, port: status}
          resources:
            requests: {cpu: 5m, memory: 16Mi}
            limits: {memory: 64Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: [[.Lease]]
  namespace: [[.Namespace]]
spec:
  selector: {app: [[.Lease]]}
  ports:
    - {name: http, port: 80, targetPort: http}
`

const execBody = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: [[.Lease]]
  namespace: [[.Namespace]]
spec:
  replicas: 2
  selector:
    matchLabels: {app: [[.Lease]]}
  template:
    metadata:
      labels: {app: [[.Lease]]}
    spec:
      serviceAccountName: [[.SA]]
      # Above --grace (4s) plus the release: the child is stopped and the
      # lease released before the kubelet's SIGKILL.
      terminationGracePeriodSeconds: 30
      containers:
        - name: app
          # The application image with the incumbent binary added.
          image: registry.example/app-with-incumbent:latest
          command:
            - incumbent
            - run
            - --lease=[[.Lease]]
            - --http-addr=:4040
            # release (default): a child that exits hands the work to another
            # replica; restart: run it again here; exit: exit with its code.
            - --on-child-exit=release
            - --
            - /app/server
            - --listen=:8080
          env:
[[.PodEnv]]
          ports:
            - {name: status, containerPort: 4040}
          # Every replica is Ready and healthy; only the leader runs the
          # child. /healthz answers from the first moment (200 while it waits
          # for the API server, saying so).
          startupProbe:
            httpGet: {path: /healthz, port: status}
            periodSeconds: 1
            failureThreshold: 30
          readinessProbe:
            httpGet: {path: /healthz, port: status}
          livenessProbe:
            httpGet: {path: /healthz, port: status}
`

const labelsBody = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: [[.Lease]]
  namespace: [[.Namespace]]
spec:
  replicas: 3
  selector:
    matchLabels: {app: [[.Lease]]}
  template:
    metadata:
      labels: {app: [[.Lease]]}
    spec:
      serviceAccountName: [[.SA]]
      initContainers:
        - name: incumbent
          image: [[.Image]]
          restartPolicy: Always
          args:
            - run
            - --lease=[[.Lease]]
            - --http-addr=:4040
            - --label-pod
            - --events
            # The application serves what the Service routes to it and does
            # not act on leadership itself: release at once when a term ends.
            # If it does (it follows /v1/watch), drop this line, so that the
            # release waits for it.
            - --await-app=false
          env:
[[.PodEnv]]
          ports:
            - {name: status, containerPort: 4040}
          startupProbe:
            httpGet: {path: /healthz, port: status}
            periodSeconds: 1
            failureThreshold: 30
          livenessProbe:
            httpGet: {path: /healthz, port: status}
          # Steps down as soon as the pod is deleted: the Service routes to
          # the next leader without waiting for this pod's shutdown.
          lifecycle:
            preStop:
              exec: {command: [/incumbent, withdraw]}
          resources:
            requests: {cpu: 5m, memory: 16Mi}
            limits: {memory: 64Mi}
      containers:
        - name: app
          image: registry.example/app:latest
          ports:
            - {name: http, containerPort: 8080}
          # Readiness means healthy, not leader: every replica stays Ready.
          readinessProbe:
            httpGet: {path: /ready, port: http}
---
# Routes only to the pod labelled leader.
apiVersion: v1
kind: Service
metadata:
  name: [[.Lease]]
  namespace: [[.Namespace]]
spec:
  selector:
    app: [[.Lease]]
    incumbent.io/lease: [[.Lease]]
    incumbent.io/role: leader
  ports:
    - {name: http, port: 80, targetPort: http}
---
# Works as usual: every replica is Ready.
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: [[.Lease]]
  namespace: [[.Namespace]]
spec:
  maxUnavailable: 1
  selector:
    matchLabels: {app: [[.Lease]]}
`
