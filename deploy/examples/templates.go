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
            # reach it; the default is 127.0.0.1:4040.
            - --http-addr=:4040
          env:
[[.PodEnv]]
          ports:
            - {name: status, containerPort: 4040}
          startupProbe:
            httpGet: {path: /healthz, port: status}
            periodSeconds: 1
          livenessProbe:
            httpGet: {path: /healthz, port: status}
          resources:
            requests: {cpu: 5m, memory: 16Mi}
            limits: {memory: 64Mi}
      containers:
        - name: app
          image: registry.example/app:latest
          env:
            # The application reads /v1/status or follows /v1/watch here.
            - name: LEADER_ELECTOR_URL
              value: http://127.0.0.1:4040
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
          # Every replica is Ready and healthy; only the leader runs the child.
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
          env:
[[.PodEnv]]
          ports:
            - {name: status, containerPort: 4040}
          startupProbe:
            httpGet: {path: /healthz, port: status}
            periodSeconds: 1
          livenessProbe:
            httpGet: {path: /healthz, port: status}
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
