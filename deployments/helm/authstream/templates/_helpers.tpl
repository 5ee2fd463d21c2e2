{{/* Names and labels shared by every object of the chart. */}}

{{- define "authstream.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "authstream.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component; dict: root, component. */}}
{{- define "authstream.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
AUTH_NATS_URL for one NATS user: every server with the user's credentials.
The password is the environment variable NATS_PASSWORD, set from the secret
just before, which Kubernetes expands in $(NATS_PASSWORD): the password never
appears in the rendered manifest. dict: root, user.
*/}}
{{- define "authstream.natsURL" -}}
{{- $user := .user -}}
{{- $urls := list -}}
{{- range .root.Values.nats.servers -}}
{{- $urls = append $urls (printf "nats://%s:$(NATS_PASSWORD)@%s" $user .) -}}
{{- end -}}
{{- join "," $urls -}}
{{- end -}}

{{/* A secretKeyRef env var; dict: root, name, key. */}}
{{- define "authstream.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secrets.name }}
      key: {{ .key }}
{{- end -}}

{{/*
The environment every service shares: NATS as the component's own user,
PostgreSQL, the KEK, the public URL and logging. dict: root, user,
passwordKey.
*/}}
{{- define "authstream.commonEnv" -}}
{{- $v := .root.Values -}}
{{ include "authstream.secretEnv" (dict "root" .root "name" "NATS_PASSWORD" "key" .passwordKey) }}
- name: AUTH_NATS_URL
  value: {{ include "authstream.natsURL" (dict "root" .root "user" .user) | quote }}
- name: AUTH_STREAM_REPLICAS
  value: {{ $v.nats.streamReplicas | quote }}
{{ include "authstream.secretEnv" (dict "root" .root "name" "DATABASE_URL" "key" $v.secrets.keys.databaseURL) }}
{{ include "authstream.secretEnv" (dict "root" .root "name" "AUTH_KEK" "key" $v.secrets.keys.kek) }}
- name: AUTH_PUBLIC_URL
  value: {{ $v.publicURL | quote }}
- name: AUTH_LOG_LEVEL
  value: {{ $v.log.level | quote }}
- name: AUTH_LOG_FORMAT
  value: {{ $v.log.format | quote }}
{{- with $v.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
A component's Deployment, Service and PodDisruptionBudget. dict: root,
component (command, projector, query, dispatcher), binary, port, values
(the component's values), env (its own environment, rendered YAML list).
*/}}
{{- define "authstream.workload" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $name := printf "%s-%s" (include "authstream.fullname" $root) .component -}}
{{- $sel := include "authstream.selector" (dict "root" $root "component" .component) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "authstream.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not (and (eq .component "query") $v.autoscaling.enabled) }}
  replicas: {{ $v.replicas }}
  {{- end }}
  selector:
    matchLabels:
      {{- $sel | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "authstream.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
    spec:
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      automountServiceAccountToken: false
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      # Spread replicas over nodes so one node's loss leaves the others.
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- $sel | nindent 14 }}
      containers:
        - name: {{ .component }}
          image: {{ printf "%s/%s:%s" $root.Values.image.registry .binary (default $root.Chart.AppVersion $root.Values.image.tag) | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          ports:
            - name: http
              containerPort: {{ .port }}
              protocol: TCP
          env:
            {{- .env | nindent 12 }}
            {{- with $root.Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          # /healthz: the process serves; /readyz: NATS, JetStream and
          # PostgreSQL reachable (the projector: projections caught up).
          startupProbe:
            httpGet: { path: /healthz, port: http }
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            httpGet: { path: /healthz, port: http }
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          readinessProbe:
            httpGet: { path: /readyz, port: http }
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 3
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir: {}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "authstream.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  type: {{ if $v.service }}{{ $v.service.type }}{{ else }}ClusterIP{{ end }}
  selector:
    {{- $sel | nindent 4 }}
  ports:
    - name: http
      port: {{ if $v.service }}{{ $v.service.port }}{{ else }}{{ .port }}{{ end }}
      targetPort: http
      protocol: TCP
{{- $min := $v.replicas -}}
{{- if and (eq .component "query") $v.autoscaling.enabled -}}
{{- $min = $v.autoscaling.minReplicas -}}
{{- end -}}
{{- if gt (int $min) 1 }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "authstream.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  minAvailable: {{ $v.podDisruptionBudget.minAvailable }}
  selector:
    matchLabels:
      {{- $sel | nindent 6 }}
{{- end }}
{{- end -}}
