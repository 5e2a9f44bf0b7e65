package podworker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
)

// Satellite resolves a container's environment itself, when it creates the container, as the
// kubelet does (pkg/kubelet/kubelet_pods.go makeEnvironmentVariables); virtual-kubelet's own
// resolution is switched off (the pod controller's SkipDownwardAPIResolution) because it cannot resolve
// status.podIP, status.hostIP or resourceFieldRef, and a pod that uses them never reached
// Satellite. As with the kubelet, a missing Secret, ConfigMap or key leaves the container
// waiting in CreateContainerConfigError, and values are read again at every restart.

// envSources is what a container's environment is read from besides its pod.
type envSources struct {
	objects Objects
	// hostIP is the pod's IP and its host's (Config.PodIP): every pod shares one network.
	hostIP string
	// allocatable is what an unset limit reads as.
	allocatable corev1.ResourceList
	// apiEndpoint is Config.PodAPIEndpoint.
	apiEndpoint string
}

func (p *Worker) envSources() envSources {
	return envSources{objects: p.objects,
		hostIP: p.cfg.PodIP, allocatable: p.allocatable(), apiEndpoint: p.cfg.PodAPIEndpoint}
}

// envList keeps variables in the order they were first set, with the value last set: the
// kubelet's map, made deterministic.
type envList struct {
	names  []string
	values map[string]string
}

func (l *envList) set(name, value string) {
	if _, ok := l.values[name]; !ok {
		l.names = append(l.names, name)
	}
	l.values[name] = value
}

// containerEnv is the container's environment: envFrom first, then env in order (overriding
// envFrom), $(VAR) references expanded against the variables declared before and the service
// variables, then the service variables not set otherwise.
func containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, src envSources) ([]*runtimeapi.KeyValue, error) {
	if pod.Spec.EnableServiceLinks == nil {
		return nil, errors.New("nil pod.spec.enableServiceLinks encountered, cannot construct envvars")
	}
	svc, err := serviceEnv(ctx, src.objects, pod.Namespace, *pod.Spec.EnableServiceLinks, src.apiEndpoint)
	if err != nil {
		return nil, err
	}
	env := envList{values: map[string]string{}}
	objs := objectCache{ctx: ctx, src: src, ns: pod.Namespace}
	if err := envFrom(&env, c.EnvFrom, &objs); err != nil {
		return nil, err
	}
	mapping := func(name string) (string, bool) {
		if v, ok := env.values[name]; ok {
			return v, true
		}
		v, ok := svc[name]
		return v, ok
	}
	for i := range c.Env {
		e := &c.Env[i]
		val := e.Value
		switch {
		case val != "":
			val = kubecontainer.Expand(val, mapping)
		case e.ValueFrom != nil:
			v, skip, err := envValueFrom(pod, c, e, &objs)
			if err != nil {
				return nil, err
			}
			if skip {
				continue
			}
			val = v
		}
		env.set(e.Name, val)
	}
	out := make([]*runtimeapi.KeyValue, 0, len(env.names)+len(svc))
	for _, n := range env.names {
		out = append(out, &runtimeapi.KeyValue{Key: n, Value: env.values[n]})
	}
	for _, n := range sortedKeys(svc) {
		if _, ok := env.values[n]; !ok {
			out = append(out, &runtimeapi.KeyValue{Key: n, Value: svc[n]})
		}
	}
	return out, nil
}

func envFrom(env *envList, sources []corev1.EnvFromSource, objs *objectCache) error {
	for _, ef := range sources {
		var data map[string]string
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := objs.configMap(ef.ConfigMapRef.Name)
			if apierrors.IsNotFound(err) && isTrue(ef.ConfigMapRef.Optional) {
				continue
			}
			if err != nil {
				return err
			}
			data = cm.Data
		case ef.SecretRef != nil:
			s, err := objs.secret(ef.SecretRef.Name)
			if apierrors.IsNotFound(err) && isTrue(ef.SecretRef.Optional) {
				continue
			}
			if err != nil {
				return err
			}
			data = make(map[string]string, len(s.Data))
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		for _, k := range sortedKeys(data) {
			env.set(ef.Prefix+k, data[k])
		}
	}
	return nil
}

// envValueFrom resolves one valueFrom; skip reports an optional reference that is missing.
func envValueFrom(pod *corev1.Pod, c *corev1.Container, e *corev1.EnvVar, objs *objectCache) (val string, skip bool, err error) {
	vf := e.ValueFrom
	switch {
	case vf.FieldRef != nil:
		val, err = kuberuntime.EnvField(pod, vf.FieldRef, objs.src.hostIP)
		return val, false, err
	case vf.ResourceFieldRef != nil:
		val, err = kuberuntime.ContainerResource(pod, c, vf.ResourceFieldRef, objs.src.allocatable)
		return val, false, err
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		cm, err := objs.configMap(ref.Name)
		if err != nil {
			return "", apierrors.IsNotFound(err) && isTrue(ref.Optional), ignoreOptional(err, ref.Optional)
		}
		v, ok := cm.Data[ref.Key]
		if !ok && !isTrue(ref.Optional) {
			return "", false, fmt.Errorf("couldn't find key %v in ConfigMap %v/%v", ref.Key, pod.Namespace, ref.Name)
		}
		return v, !ok, nil
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		s, err := objs.secret(ref.Name)
		if err != nil {
			return "", apierrors.IsNotFound(err) && isTrue(ref.Optional), ignoreOptional(err, ref.Optional)
		}
		v, ok := s.Data[ref.Key]
		if !ok && !isTrue(ref.Optional) {
			return "", false, fmt.Errorf("couldn't find key %v in Secret %v/%v", ref.Key, pod.Namespace, ref.Name)
		}
		return string(v), !ok, nil
	case vf.FileKeyRef != nil:
		return "", false, fmt.Errorf("env %q: fileKeyRef is not supported on Satellite nodes", e.Name)
	}
	return "", false, nil
}

// ignoreOptional drops a not-found error of an optional reference.
func ignoreOptional(err error, optional *bool) error {
	if apierrors.IsNotFound(err) && isTrue(optional) {
		return nil
	}
	return err
}

func isTrue(b *bool) bool { return b != nil && *b }

// objectCache reads each ConfigMap and Secret once per container, as the kubelet does.
type objectCache struct {
	ctx        context.Context
	src        envSources
	ns         string
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
}

func (o *objectCache) configMap(name string) (*corev1.ConfigMap, error) {
	if cm, ok := o.configMaps[name]; ok {
		return cm, nil
	}
	if o.src.objects == nil {
		return nil, fmt.Errorf("couldn't get configMap %v/%v, no kubeClient defined", o.ns, name)
	}
	cm, err := o.src.objects.ConfigMap(o.ctx, o.ns, name)
	if err != nil {
		return nil, err
	}
	if o.configMaps == nil {
		o.configMaps = map[string]*corev1.ConfigMap{}
	}
	o.configMaps[name] = cm
	return cm, nil
}

func (o *objectCache) secret(name string) (*corev1.Secret, error) {
	if s, ok := o.secrets[name]; ok {
		return s, nil
	}
	if o.src.objects == nil {
		return nil, fmt.Errorf("couldn't get secret %v/%v, no kubeClient defined", o.ns, name)
	}
	s, err := o.src.objects.Secret(o.ctx, o.ns, name)
	if err != nil {
		return nil, err
	}
	if o.secrets == nil {
		o.secrets = map[string]*corev1.Secret{}
	}
	o.secrets[name] = s
	return s, nil
}

// serviceEnv are the service link variables (pkg/kubelet/envvars): those of the default
// namespace's kubernetes Service always, those of the pod's namespace with enableServiceLinks.
// With apiEndpoint (host:port), the kubernetes Service's name that endpoint: the API as the
// host reaches it.
func serviceEnv(ctx context.Context, objects Objects, ns string, links bool, apiEndpoint string) (map[string]string, error) {
	env := map[string]string{}
	chosen := map[string]*corev1.Service{}
	var all []*corev1.Service
	if objects != nil {
		var err error
		if all, err = objects.Services(ctx); err != nil {
			return nil, errors.New("failed to list services when setting up env vars")
		}
	}
	for _, s := range all {
		if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone || len(s.Spec.Ports) == 0 {
			continue
		}
		switch {
		case s.Namespace == "default" && s.Name == "kubernetes":
			if _, ok := chosen[s.Name]; !ok {
				chosen[s.Name] = s
			}
		case s.Namespace == ns && links:
			chosen[s.Name] = s
		}
	}
	if k := chosen["kubernetes"]; apiEndpoint != "" && (k == nil || k.Namespace == "default") {
		if s := apiEndpointService(apiEndpoint); s != nil {
			chosen["kubernetes"] = s
		}
	}
	for _, s := range chosen {
		addServiceEnv(env, s)
	}
	return env, nil
}

// apiEndpointService is the kubernetes Service as pods on the host reach it: the endpoint
// (host:port, checked at start) as its address, with one port, https.
func apiEndpointService(endpoint string) *corev1.Service {
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return nil
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil
	}
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"},
		Spec: corev1.ServiceSpec{ClusterIP: host, Ports: []corev1.ServicePort{{Name: "https", Port: int32(n), Protocol: corev1.ProtocolTCP}}}}
}

func addServiceEnv(env map[string]string, s *corev1.Service) {
	prefix := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
	ip := s.Spec.ClusterIP
	env[prefix+"_SERVICE_HOST"] = ip
	env[prefix+"_SERVICE_PORT"] = strconv.Itoa(int(s.Spec.Ports[0].Port))
	for i, sp := range s.Spec.Ports {
		if sp.Name != "" {
			env[prefix+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(sp.Name, "-", "_"))] = strconv.Itoa(int(sp.Port))
		}
		proto := string(corev1.ProtocolTCP)
		if sp.Protocol != "" {
			proto = string(sp.Protocol)
		}
		url := strings.ToLower(proto) + "://" + net.JoinHostPort(ip, strconv.Itoa(int(sp.Port)))
		if i == 0 {
			env[prefix+"_PORT"] = url // Docker special-cases the first port
		}
		pp := fmt.Sprintf("%s_PORT_%d_%s", prefix, sp.Port, strings.ToUpper(proto))
		env[pp] = url
		env[pp+"_PROTO"] = strings.ToLower(proto)
		env[pp+"_PORT"] = strconv.Itoa(int(sp.Port))
		env[pp+"_ADDR"] = ip
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
