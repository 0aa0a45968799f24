{{/*
The chart name (nameOverride), truncated to 63 characters.
*/}}
{{- define "synthetic-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's resources: fullnameOverride, else "<release>-<name>" or the
release name when it already contains the name. Truncated to 63 characters (DNS labels).
*/}}
{{- define "synthetic-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "synthetic-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "synthetic-exporter.labels" -}}
helm.sh/chart: {{ include "synthetic-exporter.chart" . }}
{{ include "synthetic-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: agent
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the release's pods (immutable in a Deployment or StatefulSet selector).
*/}}
{{- define "synthetic-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "synthetic-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "synthetic-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "synthetic-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository@digest, else repository:tag (tag defaults to appVersion),
plus browser.tagSuffix with browser.enabled.
*/}}
{{- define "synthetic-exporter.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- $suffix := ternary .Values.browser.tagSuffix "" .Values.browser.enabled }}
{{- printf "%s:%s%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) $suffix }}
{{- end }}
{{- end }}

{{/*
Name of the ConfigMap of SYNTHETIC_* settings.
*/}}
{{- define "synthetic-exporter.envConfigMapName" -}}
{{- printf "%s-env" (include "synthetic-exporter.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the ConfigMap of check files rendered from checks.configMap.files.
*/}}
{{- define "synthetic-exporter.checksConfigMapName" -}}
{{- printf "%s-checks" (include "synthetic-exporter.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A settings value as an environment variable string: whole numbers without an exponent
(values arrive as float64), maps and lists as JSON, everything else as text.
*/}}
{{- define "synthetic-exporter.envValue" -}}
{{- if or (kindIs "map" .) (kindIs "slice" .) }}
{{- toJson . }}
{{- else if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/*
The SYNTHETIC_* environment of .Values.config, as a YAML map (name: value), sorted by name.
Empty values ("" or null) are left out. With browser.enabled and no config.browserArgs,
SYNTHETIC_BROWSER_ARGS is ["--no-sandbox"]. targets.<name>.<field> and labels.<name> become
SYNTHETIC_TARGETS__<NAME>__<FIELD> and SYNTHETIC_LABELS__<NAME>; other keys SYNTHETIC_<KEY>,
camelCase turned into SNAKE_CASE.
*/}}
{{- define "synthetic-exporter.configEnv" -}}
{{- $env := dict }}
{{- range $key, $value := .Values.config }}
{{- if has $key (list "secrets" "adminToken" "checksPath" "stateDir" "listen" "shard") }}
{{- fail (printf "config.%s is set by the chart or comes from secrets.existingSecret; remove it from config" $key) }}
{{- end }}
{{- if eq $key "targets" }}
{{- range $target, $fields := $value }}
{{- if not (regexMatch "^[a-z][a-z0-9_]*$" $target) }}
{{- fail (printf "config.targets.%s: target names must match ^[a-z][a-z0-9_]*$" $target) }}
{{- end }}
{{- range $field, $v := $fields }}
{{- if not (or (kindIs "invalid" $v) (eq (toString $v) "")) }}
{{- $_ := set $env (printf "SYNTHETIC_TARGETS__%s__%s" (upper $target) (snakecase $field | upper)) (include "synthetic-exporter.envValue" $v) }}
{{- end }}
{{- end }}
{{- end }}
{{- else if eq $key "labels" }}
{{- range $label, $v := $value }}
{{- if not (regexMatch "^[a-z_][a-z0-9_]*$" $label) }}
{{- fail (printf "config.labels.%s: label names must be lower case and match ^[a-z_][a-z0-9_]*$" $label) }}
{{- end }}
{{- $_ := set $env (printf "SYNTHETIC_LABELS__%s" (upper $label)) (toString $v) }}
{{- end }}
{{- else if not (or (kindIs "invalid" $value) (eq (toString $value) "")) }}
{{- $_ := set $env (printf "SYNTHETIC_%s" (snakecase $key | upper)) (include "synthetic-exporter.envValue" $value) }}
{{- end }}
{{- end }}
{{- if and .Values.browser.enabled (not (hasKey $env "SYNTHETIC_BROWSER_ARGS")) }}
{{- $_ := set $env "SYNTHETIC_BROWSER_ARGS" (toJson (list "--no-sandbox")) }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/*
Checks that the values make sense together; fails the render otherwise.
*/}}
{{- define "synthetic-exporter.validate" -}}
{{- if and (not .Values.sharding.enabled) (gt (int .Values.replicas) 1) }}
{{- fail "replicas > 1 without sharding.enabled would run every suite on every replica: set sharding.enabled=true to split the suites between replicas" }}
{{- end }}
{{- if lt (int .Values.replicas) 1 }}
{{- fail "replicas must be at least 1" }}
{{- end }}
{{- if and .Values.sharding.enabled (semverCompare "<1.28-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "sharding.enabled needs Kubernetes >= 1.28 (the apps.kubernetes.io/pod-index pod label); this cluster is %s" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and .Values.sharding.enabled .Values.persistence.existingClaim }}
{{- fail "persistence.existingClaim cannot be shared by shards: with sharding.enabled each shard gets its own claim (persistence.enabled=true without existingClaim)" }}
{{- end }}
{{- if and .Values.persistence.enabled (not .Values.sharding.enabled) (not .Values.persistence.existingClaim) }}
{{- fail "persistence.enabled without sharding needs persistence.existingClaim (a Deployment cannot create per-pod claims)" }}
{{- end }}
{{- if and .Values.checks.configMap.enabled (not .Values.checks.configMap.files) (not .Values.checks.existingConfigMap) }}
{{- fail "checks.configMap.enabled needs checks.configMap.files (or use checks.existingConfigMap)" }}
{{- end }}
{{- end }}

{{/*
Name of the ConfigMap mounted at /app/checks, or "" to keep the image's checks.
*/}}
{{- define "synthetic-exporter.checksVolumeConfigMap" -}}
{{- if .Values.checks.existingConfigMap }}
{{- .Values.checks.existingConfigMap }}
{{- else if .Values.checks.configMap.enabled }}
{{- include "synthetic-exporter.checksConfigMapName" . }}
{{- end }}
{{- end }}

{{/*
The pod template shared by the Deployment and the StatefulSet.
*/}}
{{- define "synthetic-exporter.podTemplate" -}}
metadata:
  labels:
    {{- include "synthetic-exporter.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "synthetic-exporter.configChecksum" . }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "synthetic-exporter.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  containers:
    - name: synthetic-exporter
      image: {{ include "synthetic-exporter.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - serve
      ports:
        - name: http
          containerPort: 9479
          protocol: TCP
      envFrom:
        - configMapRef:
            name: {{ include "synthetic-exporter.envConfigMapName" . }}
        {{- with .Values.secrets.existingSecret }}
        - secretRef:
            name: {{ . }}
        {{- end }}
        {{- with .Values.extraEnvFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      env:
        - name: SYNTHETIC_CHECKS_PATH
          value: /app/checks
        - name: SYNTHETIC_STATE_DIR
          value: /var/lib/synthetic-exporter
        - name: SYNTHETIC_LISTEN
          value: "0.0.0.0:9479"
        {{- if .Values.sharding.enabled }}
        - name: POD_INDEX
          valueFrom:
            fieldRef:
              fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
        - name: SYNTHETIC_SHARD
          value: {{ printf "$(POD_INDEX)/%d" (int .Values.replicas) | quote }}
        {{- end }}
        {{- if .Values.browser.enabled }}
        # Chromium's caches and settings: HOME (/app) is on the read-only root filesystem.
        - name: XDG_CACHE_HOME
          value: /tmp/.cache
        - name: XDG_CONFIG_HOME
          value: /tmp/.config
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (ternary .Values.browser.resources .Values.resources .Values.browser.enabled) }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: state
          mountPath: /var/lib/synthetic-exporter
        - name: tmp
          mountPath: /tmp
        {{- if .Values.browser.enabled }}
        - name: dshm
          mountPath: /dev/shm
        {{- end }}
        {{- if include "synthetic-exporter.checksVolumeConfigMap" . }}
        - name: checks
          mountPath: /app/checks
          readOnly: true
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    {{- if not .Values.sharding.enabled }}
    {{- if and .Values.persistence.enabled .Values.persistence.existingClaim }}
    - name: state
      persistentVolumeClaim:
        claimName: {{ .Values.persistence.existingClaim }}
    {{- else }}
    - name: state
      emptyDir:
        sizeLimit: {{ .Values.persistence.emptyDirSizeLimit }}
    {{- end }}
    {{- else if not .Values.persistence.enabled }}
    - name: state
      emptyDir:
        sizeLimit: {{ .Values.persistence.emptyDirSizeLimit }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: {{ ternary .Values.browser.tmpSizeLimit "64Mi" .Values.browser.enabled }}
    {{- if .Values.browser.enabled }}
    - name: dshm
      emptyDir:
        medium: Memory
        sizeLimit: {{ .Values.browser.shmSizeLimit }}
    {{- end }}
    {{- with include "synthetic-exporter.checksVolumeConfigMap" . }}
    - name: checks
      configMap:
        name: {{ . }}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- range $constraint := . }}
    {{- if not $constraint.labelSelector }}
    {{- $constraint = merge (dict "labelSelector" (dict "matchLabels" (include "synthetic-exporter.selectorLabels" $ | fromYaml))) $constraint }}
    {{- end }}
    - {{ toYaml $constraint | indent 6 | trim }}
    {{- end }}
  {{- end }}
{{- end }}

{{/*
sha256 of the rendered settings and check-file ConfigMaps: a change rolls the pods.
*/}}
{{- define "synthetic-exporter.configChecksum" -}}
{{- $configs := list (include (print .Template.BasePath "/configmap-env.yaml") .) (include (print .Template.BasePath "/configmap-checks.yaml") .) }}
{{- join "\n---\n" $configs | sha256sum }}
{{- end }}
