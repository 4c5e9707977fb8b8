{{/* The names of what the chart installs, each derived from the release's name. */}}

{{/* The controller's ServiceAccount, ClusterRole, Deployment and Lease. */}}
{{- define "simseries.controller" -}}
{{- printf "%s-controller" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels of every object; the selector uses the first two only, as they never change. */}}
{{- define "simseries.selectorLabels" -}}
app.kubernetes.io/name: simseries
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "simseries.labels" -}}
{{ include "simseries.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "simseries.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
