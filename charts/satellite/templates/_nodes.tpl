{{/* satellite.namedNodes: the node names of the hosts whose names are known at install (eniIP or
     nodeName), as a JSON list. */}}
{{- define "satellite.namedNodes" -}}
{{- $root := . -}}
{{- $names := list -}}
{{- range $h := .Values.hosts -}}
{{- if not (include "satellite.eniLookup" $h) }}{{ $names = append $names (include "satellite.nodeName" (dict "host" $h "region" $root.Values.region)) }}{{ end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/* satellite.eniNamed: "true" when some host's node is named after an ENI found or created at
     start, so that its name is not known at install; "" otherwise. */}}
{{- define "satellite.eniNamed" -}}
{{- range .Values.hosts }}{{ if include "satellite.eniLookup" . }}true{{ end }}{{ end -}}
{{- end -}}

{{/* satellite.ownNode: a CEL expression, true when the string expression .name is one of the
     release's nodes: a name known at install or, for hosts named after an ENI found at start,
     any name Satellite derives from an ENI address in the region (provider/name.go). */}}
{{- define "satellite.ownNode" -}}
{{- $root := .root -}}
({{ .name }} in {{ include "satellite.namedNodes" $root }}
{{- if include "satellite.eniNamed" $root }} || {{ .name }}.matches('^fargate-ip-[0-9]+-[0-9]+-[0-9]+-[0-9]+[.]{{ eq $root.Values.region "us-east-1" | ternary "ec2[.]internal" (printf "%s[.]compute[.]internal" $root.Values.region) }}$'){{ end -}}
)
{{- end -}}
