{{- define "satellite.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "satellite.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "satellite.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "satellite.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "satellite.sshSecret" -}}
{{- default (printf "%s-ssh" (include "satellite.fullname" .)) .Values.ssh.existingSecret -}}
{{- end -}}

{{- define "satellite.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* satellite.nodeName: the node name of host (dict "host" h "region" r), as Satellite derives it:
     an explicit nodeName, or fargate-ip-<a-b-c-d>.<region>.compute.internal (ec2.internal in us-east-1). */}}
{{- define "satellite.nodeName" -}}
{{- if include "satellite.eniLookup" .host }}{{ fail (printf "hosts[%s]: the node is named after its ENI at start; no name to derive" .host.name) }}{{ end -}}
{{- if .host.nodeName -}}
{{- .host.nodeName -}}
{{- else -}}
{{- if not .region }}{{ fail (printf "hosts[%s]: eniIP needs region (or give nodeName)" .host.name) }}{{ end -}}
{{- printf "fargate-ip-%s.%s" (replace "." "-" .host.eniIP) (eq .region "us-east-1" | ternary "ec2.internal" (printf "%s.compute.internal" .region)) -}}
{{- end -}}
{{- end -}}

{{/* satellite.kv: a map as sorted key=value pairs, comma-separated. */}}
{{- define "satellite.kv" -}}
{{- $out := list -}}
{{- range $k, $v := . }}{{ $out = append $out (printf "%s=%s" $k $v) }}{{ end -}}
{{- join "," $out -}}
{{- end -}}

{{/* satellite.eniLookup: "true" when host h's node is named after an ENI Satellite finds or
     creates at start (hosts[].eni), "" otherwise. eni excludes eniIP and nodeName. */}}
{{- define "satellite.eniLookup" -}}
{{- $e := .eni | default dict -}}
{{- if or $e.id $e.tags $e.subnet -}}
{{- if or .eniIP .nodeName }}{{ fail (printf "hosts[%s]: eni, eniIP and nodeName exclude each other" .name) }}{{ end -}}
true
{{- end -}}
{{- end -}}

{{/* satellite.eniTags: the tags Satellite finds host h's ENI by, as key=value pairs: eni.tags, or
     satellite.dev/host=<name> for an ENI it creates. */}}
{{- define "satellite.eniTags" -}}
{{- $e := .eni | default dict -}}
{{- if $e.tags -}}
{{- include "satellite.kv" $e.tags -}}
{{- else if $e.subnet -}}
satellite.dev/host={{ .name }}
{{- end -}}
{{- end -}}
