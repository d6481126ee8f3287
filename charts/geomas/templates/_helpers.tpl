{{/*
Shared snippets. Object names are fixed (geomas-mlflow, geomas-zenml, ...) because k8s/,
configs/k8s.yaml and zenml_stack.yaml refer to them by name.
*/}}

{{/* Labels shared by every object; call with (dict "name" "geomas-mlflow" "component" "tracking" "root" $). */}}
{{- define "geomas.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: geomas
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels: stable across upgrades (no version). */}}
{{- define "geomas.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: geomas
{{- end -}}

{{/* image reference; call with (dict "image" .Values.mlflow.image "root" $). */}}
{{- define "geomas.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* Pod-level security context: non-root uid/gid, RuntimeDefault seccomp. */}}
{{- define "geomas.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security context. */}}
{{- define "geomas.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: {{ .Values.securityContext.readOnlyRootFilesystem }}
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* imagePullSecrets block, or nothing; call with `include ... | nindent N` inside `with`. */}}
{{- define "geomas.imagePullSecrets" -}}
{{- if .Values.imagePullSecrets -}}
imagePullSecrets:
{{- range .Values.imagePullSecrets }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* MLflow's artifact destination: s3://<bucket>/<prefix>. */}}
{{- define "geomas.mlflowArtifacts" -}}
{{- printf "s3://%s/%s" .Values.s3.bucket (trimAll "/" .Values.mlflow.artifactsPrefix) -}}
{{- end -}}

{{/* In-cluster URLs (the Service names are part of the contract with configs/k8s.yaml). */}}
{{- define "geomas.mlflowUrl" -}}
{{- printf "http://geomas-mlflow:%d" (int .Values.mlflow.port) -}}
{{- end -}}

{{- define "geomas.zenmlUrl" -}}
{{- printf "http://geomas-zenml:%d" (int .Values.zenml.port) -}}
{{- end -}}

{{/* AWS_* from the S3 Secret, the endpoint and region: for MLflow and the retrain job. */}}
{{- define "geomas.s3Env" -}}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.s3.secretName }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.s3.secretName }}
      key: AWS_SECRET_ACCESS_KEY
- name: AWS_DEFAULT_REGION
  value: {{ .Values.s3.region | quote }}
{{- with .Values.s3.endpointUrl }}
- name: MLFLOW_S3_ENDPOINT_URL
  value: {{ . | quote }}
- name: AWS_ENDPOINT_URL_S3
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Head of a NetworkPolicy (starts on a new line); call with (dict "name" "geomas-..." "root" $). */}}
{{- define "geomas.networkPolicyHeader" }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "geomas.labels" (dict "name" .name "component" "network" "root" .root) | nindent 4 }}
{{- end }}


{{/* What a pipeline client (the retrain job, the panel's run Jobs) needs to submit runs and log
to MLflow: the servers' URLs, the ZenML API key, S3, the MLflow login. One list, two users. */}}
{{- define "geomas.pipelineClientEnv" -}}
- name: MLFLOW_TRACKING_URI
  value: {{ include "geomas.mlflowUrl" . | quote }}
- name: ZENML_STORE_URL
  value: {{ include "geomas.zenmlUrl" . | quote }}
- name: ZENML_STORE_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.retrain.apiKeySecret.name }}
      key: {{ .Values.retrain.apiKeySecret.key }}
{{ include "geomas.s3Env" . }}
{{- if .Values.mlflow.auth.enabled }}
- name: MLFLOW_TRACKING_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.mlflow.auth.secretName }}
      key: username
- name: MLFLOW_TRACKING_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.mlflow.auth.secretName }}
      key: password
{{- end }}
{{- end -}}
