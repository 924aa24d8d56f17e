{{/*
Object names are fixed, as in manifests/: the webhook's settings, its RBAC (resourceNames) and the
MutatingWebhookConfiguration refer to them, and the cluster-scoped objects allow one install per
cluster anyway. Only the namespace is the release's.
*/}}

{{/* The webhook's name: Deployment, Service, ServiceAccount, its RBAC, its pods' label. */}}
{{- define "kube-elector.webhook" -}}kube-elector-webhook{{- end }}

{{/* The controller's name: Deployment, ServiceAccount, ClusterRole, its pods' label; the policies'
username (validatingadmissionpolicy.yaml) names its ServiceAccount. */}}
{{- define "kube-elector.controller" -}}kube-elector-controller{{- end }}

{{/*
metadata: name, namespace (namespaced), labels and annotations of every object.
Arguments: root (the chart's context), name, namespaced (bool), app (the app.kubernetes.io/name
label, optional), annotations (optional). commonLabels cannot override the chart's own labels.
*/}}
{{- define "kube-elector.metadata" -}}
{{- $root := .root -}}
name: {{ .name }}
{{- if .namespaced }}
namespace: {{ $root.Release.Namespace }}
{{- end }}
{{- $labels := dict
  "app.kubernetes.io/part-of" "kube-elector"
  "app.kubernetes.io/managed-by" $root.Release.Service
  "app.kubernetes.io/instance" $root.Release.Name
  "app.kubernetes.io/version" $root.Chart.AppVersion
  "helm.sh/chart" (printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_") }}
{{- with .app }}{{ $_ := set $labels "app.kubernetes.io/name" . }}{{ end }}
labels:
  {{- toYaml (merge $labels $root.Values.commonLabels) | nindent 2 }}
{{- with merge (dict) (.annotations | default dict) $root.Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Namespaces never injected: the configured ones and the release's own. */}}
{{- define "kube-elector.excludedNamespaces" -}}
{{- append .Values.webhook.excludedNamespaces .Release.Namespace | uniq | toJson }}
{{- end }}

{{/* image reference: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "kube-elector.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .root.Chart.AppVersion) }}
{{- end }}
