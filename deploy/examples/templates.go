package examples

// The applications of the examples, before incumbent inject: what a user
// writes. inject adds the sidecar (or, in exec mode, runs the command under
// incumbent), its RBAC, and in the label mode the leader Service and a
// PodDisruptionBudget.

const statusAPIApp = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: status-api-demo
  namespace: default
spec:
  replicas: 3
  selector:
    matchLabels: {app: status-api-demo}
  template:
    metadata:
      labels: {app: status-api-demo}
    spec:
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

const leaderPortApp = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: leader-port-demo
  namespace: default
spec:
  replicas: 2
  # Only the leader is ever Ready, so a rollout can only progress by taking
  # the old leader away before any new pod is Ready: maxUnavailable must be
  # 100% (or the strategy Recreate). Measured on a real kubelet (test/node):
  # with any lower maxUnavailable (1, or the default 25%) kubectl rollout
  # restart deadlocks, the new pods followers that never become Ready and
  # the old leader never taken away; with 100% it goes through, with no
  # Ready pod for about 1.3 s (2.3 s with Recreate). kubectl rollout status
  # never succeeds all the same (one pod of N is ever available), and the
  # Progressing condition ends in ProgressDeadlineExceeded: prefer
  # labels.yaml, where every replica is Ready.
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 0, maxUnavailable: 100%}
  selector:
    matchLabels: {app: leader-port-demo}
  template:
    metadata:
      labels: {app: leader-port-demo}
    spec:
      terminationGracePeriodSeconds: 30
      containers:
        - name: app
          image: registry.example/app:latest
          ports:
            - {name: http, containerPort: 8080}
---
# Routes to the Ready pods: the leader alone.
apiVersion: v1
kind: Service
metadata:
  name: leader-port-demo
  namespace: default
spec:
  selector: {app: leader-port-demo}
  ports:
    - {name: http, port: 80, targetPort: http}
`

const execApp = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: exec-demo
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: exec-demo}
  template:
    metadata:
      labels: {app: exec-demo}
    spec:
      # Above --grace (4s) plus the release: the child is stopped and the
      # lease released before the kubelet's SIGKILL.
      terminationGracePeriodSeconds: 30
      containers:
        - name: app
          image: registry.example/app:latest
          # The image's entrypoint, written out: inject runs it under
          # incumbent.
          command: [/app/server]
          args: [--listen=:8080]
`

const labelsApp = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: labels-demo
  namespace: default
spec:
  replicas: 3
  selector:
    matchLabels: {app: labels-demo}
  template:
    metadata:
      labels: {app: labels-demo}
    spec:
      containers:
        - name: app
          image: registry.example/app:latest
          ports:
            - {name: http, containerPort: 8080}
          # Readiness means healthy, not leader: every replica stays Ready.
          readinessProbe:
            httpGet: {path: /ready, port: http}
`
