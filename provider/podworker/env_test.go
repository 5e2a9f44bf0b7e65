package podworker

import (
	"context"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// listerObjects are Objects read from client-go listers; a nil lister has no objects.
type listerObjects struct {
	configMaps corev1listers.ConfigMapLister
	secrets    corev1listers.SecretLister
	services   corev1listers.ServiceLister
}

func (l listerObjects) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	if l.configMaps == nil {
		return nil, apierrors.NewNotFound(corev1.Resource("configmap"), name)
	}
	return l.configMaps.ConfigMaps(ns).Get(name)
}

func (l listerObjects) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	if l.secrets == nil {
		return nil, apierrors.NewNotFound(corev1.Resource("secret"), name)
	}
	return l.secrets.Secrets(ns).Get(name)
}

func (l listerObjects) Services(context.Context) ([]*corev1.Service, error) {
	if l.services == nil {
		return nil, nil
	}
	return l.services.List(labels.Everything())
}

// listers are client-go listers over fixed objects, as virtual-kubelet's informers give them.
func listers(objs ...any) (corev1listers.ConfigMapLister, corev1listers.SecretLister, corev1listers.ServiceLister) {
	cms := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	secrets := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	svcs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, o := range objs {
		switch o.(type) {
		case *corev1.ConfigMap:
			_ = cms.Add(o)
		case *corev1.Secret:
			_ = secrets.Add(o)
		case *corev1.Service:
			_ = svcs.Add(o)
		}
	}
	return corev1listers.NewConfigMapLister(cms), corev1listers.NewSecretLister(secrets), corev1listers.NewServiceLister(svcs)
}

func envPod(links bool, env ...corev1.EnvVar) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", UID: "u-1", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "sat-node", ServiceAccountName: "builder", EnableServiceLinks: &links,
			Containers: []corev1.Container{{Name: "main", Env: env, Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}}}},
			InitContainers: []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{
				Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}}},
		},
	}
}

func fromField(path string) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}
}

func fromResource(container, res, divisor string) *corev1.EnvVarSource {
	ref := &corev1.ResourceFieldSelector{ContainerName: container, Resource: res}
	if divisor != "" {
		ref.Divisor = resource.MustParse(divisor)
	}
	return &corev1.EnvVarSource{ResourceFieldRef: ref}
}

func TestContainerEnv(t *testing.T) {
	t.Parallel()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "settings"},
		Data: map[string]string{"greeting": "hello", "LEVEL": "debug"}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "creds"},
		Data: map[string][]byte{"password": []byte("s3cr3t"), "LEVEL": []byte("secret-level")}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "my-db"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.20", Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}}}
	kube := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}}
	other := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "elsewhere", Name: "other"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.30", Ports: []corev1.ServicePort{{Port: 80}}}}
	headless := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "headless"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}}}}
	cms, secrets, svcs := listers(cm, secret, svc, kube, other, headless)
	src := envSources{objects: listerObjects{cms, secrets, svcs}, hostIP: "203.0.113.7",
		allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("16Gi")}}
	optional := ptr.To(true)
	tests := []struct {
		name    string
		links   bool
		env     []corev1.EnvVar
		from    []corev1.EnvFromSource
		want    []string // KEY=value, in order, before the service variables
		absent  []string
		wantErr string
	}{
		{name: "literal and expansion", env: []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "$(A)-$(C)"}, {Name: "C", Value: "3"}, {Name: "EMPTY"}},
			want: []string{"A=1", "B=1-$(C)", "C=3", "EMPTY="}},
		{name: "later wins, first place kept", env: []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}, {Name: "A", Value: "3"}},
			want: []string{"A=3", "B=2"}},
		{name: "fieldRefs", env: []corev1.EnvVar{
			{Name: "POD_IP", ValueFrom: fromField("status.podIP")}, {Name: "POD_IPS", ValueFrom: fromField("status.podIPs")},
			{Name: "HOST_IP", ValueFrom: fromField("status.hostIP")}, {Name: "HOST_IPS", ValueFrom: fromField("status.hostIPs")},
			{Name: "NAME", ValueFrom: fromField("metadata.name")}, {Name: "NS", ValueFrom: fromField("metadata.namespace")},
			{Name: "UID", ValueFrom: fromField("metadata.uid")}, {Name: "APP", ValueFrom: fromField("metadata.labels['app']")},
			{Name: "NODE", ValueFrom: fromField("spec.nodeName")}, {Name: "SA", ValueFrom: fromField("spec.serviceAccountName")},
			{Name: "URL", Value: "http://$(POD_IP):8080"}},
			want: []string{"POD_IP=203.0.113.7", "POD_IPS=203.0.113.7", "HOST_IP=203.0.113.7", "HOST_IPS=203.0.113.7",
				"NAME=web-0", "NS=shop", "UID=u-1", "APP=web", "NODE=sat-node", "SA=builder", "URL=http://203.0.113.7:8080"}},
		{name: "resourceFieldRefs", env: []corev1.EnvVar{
			{Name: "CPU_REQ", ValueFrom: fromResource("", "requests.cpu", "1m")},
			{Name: "CPU_REQ_CORES", ValueFrom: fromResource("", "requests.cpu", "")},
			{Name: "MEM_REQ_MI", ValueFrom: fromResource("main", "requests.memory", "1Mi")},
			{Name: "MEM_LIM", ValueFrom: fromResource("", "limits.memory", "")},
			{Name: "CPU_LIM_DEFAULT", ValueFrom: fromResource("", "limits.cpu", "1m")},
			{Name: "INIT_CPU_LIM", ValueFrom: fromResource("init", "limits.cpu", "")},
			{Name: "EPH_REQ", ValueFrom: fromResource("", "requests.ephemeral-storage", "")}},
			want: []string{"CPU_REQ=250", "CPU_REQ_CORES=1", "MEM_REQ_MI=64", "MEM_LIM=134217728", "CPU_LIM_DEFAULT=8000", "INIT_CPU_LIM=2", "EPH_REQ=0"}},
		{name: "configMap and secret keys", env: []corev1.EnvVar{
			{Name: "G", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "greeting"}}},
			{Name: "P", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
			{Name: "OPT_KEY", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "nope", Optional: optional}}},
			{Name: "OPT_OBJ", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k", Optional: optional}}}},
			want: []string{"G=hello", "P=s3cr3t"}, absent: []string{"OPT_KEY", "OPT_OBJ"}},
		{name: "envFrom then env overrides", from: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
			{Prefix: "S_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: optional}}},
			env:  []corev1.EnvVar{{Name: "greeting", Value: "hi $(LEVEL)"}},
			want: []string{"LEVEL=debug", "greeting=hi debug", "S_LEVEL=secret-level", "S_password=s3cr3t"}},
		{name: "missing secret", env: []corev1.EnvVar{{Name: "P", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Key: "k"}}}},
			wantErr: `secret "gone" not found`},
		{name: "missing configMap", from: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}}}},
			wantErr: `configmap "gone" not found`},
		{name: "missing key", env: []corev1.EnvVar{{Name: "P", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "k"}}}},
			wantErr: "couldn't find key k in Secret shop/creds"},
		{name: "missing configMap key", env: []corev1.EnvVar{{Name: "P", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "k"}}}},
			wantErr: "couldn't find key k in ConfigMap shop/settings"},
		{name: "unknown field", env: []corev1.EnvVar{{Name: "X", ValueFrom: fromField("spec.restartPolicy")}}, wantErr: "unsupported fieldPath: spec.restartPolicy"},
		{name: "unknown container", env: []corev1.EnvVar{{Name: "X", ValueFrom: fromResource("nope", "limits.cpu", "")}}, wantErr: "container nope not found"},
		{name: "service links", links: true, env: []corev1.EnvVar{{Name: "MY_DB_SERVICE_HOST", Value: "mine"}},
			want: []string{"MY_DB_SERVICE_HOST=mine", "KUBERNETES_PORT=tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443",
				"KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1", "KUBERNETES_PORT_443_TCP_PORT=443", "KUBERNETES_PORT_443_TCP_PROTO=tcp",
				"KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443", "KUBERNETES_SERVICE_PORT_HTTPS=443",
				"MY_DB_PORT=tcp://10.96.0.20:5432", "MY_DB_PORT_5432_TCP=tcp://10.96.0.20:5432", "MY_DB_PORT_5432_TCP_ADDR=10.96.0.20",
				"MY_DB_PORT_5432_TCP_PORT=5432", "MY_DB_PORT_5432_TCP_PROTO=tcp", "MY_DB_SERVICE_PORT=5432", "MY_DB_SERVICE_PORT_PG=5432"},
			absent: []string{"OTHER_SERVICE_HOST", "HEADLESS_SERVICE_HOST"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pod := envPod(tt.links, tt.env...)
			pod.Spec.Containers[0].EnvFrom = tt.from
			kv, err := containerEnv(context.Background(), pod, &pod.Spec.Containers[0], src)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range kv {
				got = append(got, e.Key+"="+e.Value)
			}
			// The kubernetes Service's variables are always there; without links they
			// come last, sorted, after the container's own.
			own := got
			if !tt.links {
				own = got[:len(got)-8]
				if tail := strings.Join(got[len(got)-8:], " "); !strings.HasPrefix(tail, "KUBERNETES_PORT=tcp://10.96.0.1:443") {
					t.Errorf("service variables = %s", tail)
				}
			}
			if strings.Join(own, " ") != strings.Join(tt.want, " ") {
				t.Errorf("env =\n%s\nwant\n%s", strings.Join(own, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, a := range tt.absent {
				for _, g := range got {
					if strings.HasPrefix(g, a+"=") {
						t.Errorf("%s is set: %s", a, g)
					}
				}
			}
		})
	}
}

func TestContainerEnvNeedsServiceLinksSet(t *testing.T) {
	t.Parallel()
	pod := envPod(false)
	pod.Spec.EnableServiceLinks = nil
	if _, err := containerEnv(context.Background(), pod, &pod.Spec.Containers[0], envSources{}); err == nil {
		t.Error("a pod without enableServiceLinks (never the case from the API) was given an environment")
	}
}

// Command and args are expanded with the container's environment, as the kubelet expands them.
func TestExpandCommandAndArgs(t *testing.T) {
	t.Parallel()
	c := &corev1.Container{Command: []string{"sh", "-c", "kill -9 $$; echo $(PORT)"}, Args: []string{"--port=$(PORT)", "$(MISSING)", "$$(PORT)", "$PORT"}}
	envs := []*runtimeapi.KeyValue{{Key: "PORT", Value: "8080"}}
	cmd, args := expandCommandAndArgs(c, envVars(envs))
	if want := []string{"sh", "-c", "kill -9 $; echo 8080"}; !reflect.DeepEqual(cmd, want) {
		t.Errorf("command %q, want %q", cmd, want)
	}
	if want := []string{"--port=8080", "$(MISSING)", "$(PORT)", "$PORT"}; !reflect.DeepEqual(args, want) {
		t.Errorf("args %q, want %q", args, want)
	}
	if cmd, args := expandCommandAndArgs(&corev1.Container{}, envVars(envs)); cmd != nil || args != nil {
		t.Errorf("no command or args: got %q %q, want none (the image's entrypoint)", cmd, args)
	}
}

// With a pod API endpoint, the kubernetes Service's variables name it (the ClusterIP is not
// routable from the host); a Service named kubernetes in the pod's own namespace keeps its own.
func TestServiceEnvAPIEndpoint(t *testing.T) {
	t.Parallel()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, s := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "mine", Name: "kubernetes"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.9", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
	} {
		if err := idx.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	lister := corev1listers.NewServiceLister(idx)
	for _, tt := range []struct {
		ns, endpoint string
		links        bool
		want         map[string]string
	}{
		{"shop", "api.cluster.example:443", false, map[string]string{"KUBERNETES_SERVICE_HOST": "api.cluster.example", "KUBERNETES_SERVICE_PORT": "443",
			"KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://api.cluster.example:443", "KUBERNETES_PORT_443_TCP_ADDR": "api.cluster.example"}},
		{"shop", "[fd00::1]:6443", false, map[string]string{"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_PORT": "tcp://[fd00::1]:6443",
			"KUBERNETES_PORT_6443_TCP_PORT": "6443"}},
		{"shop", "", false, map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"}},
		{"mine", "api.cluster.example:443", true, map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.9", "KUBERNETES_SERVICE_PORT": "80"}},
	} {
		env, err := serviceEnv(context.Background(), listerObjects{services: lister}, tt.ns, tt.links, tt.endpoint)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tt.want {
			if env[k] != v {
				t.Errorf("%s/%q: %s=%q, want %q", tt.ns, tt.endpoint, k, env[k], v)
			}
		}
		if tt.endpoint != "" && !tt.links && len(env) != 8 {
			t.Errorf("%s/%q: %d variables %v, want the kubernetes Service's 8", tt.ns, tt.endpoint, len(env), env)
		}
	}
}
