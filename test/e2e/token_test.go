package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// tokenTimes reads a JWT's issued-at and expiry claims (no verification: TokenReview does that).
func tokenTimes(t *testing.T, tok string) (iat, exp time.Time) {
	t.Helper()
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Iat, Exp int64 }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return time.Unix(c.Iat, 0), time.Unix(c.Exp, 0)
}

// A projected service account token is replaced before it expires, as the kubelet replaces
// it (after 80 % of its lifetime): with the shortest lifetime the API allows (10 minutes) the
// new token appears after 8 to 9 minutes, while the old one is still valid. This test waits
// for that, in parallel with the other long tests.
func TestIntegrationProjectedTokenRotated(t *testing.T) {
	t.Parallel()
	e := loadEnv(t)
	tg := e.targets(t)[0]
	ns := e.namespace(t)
	pod := tg.pod("token", corev1.RestartPolicyAlways, "exec sleep 3600")
	pod.Spec.Volumes = []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](600)}}}}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "token", MountPath: "/var/run/token"}}
	pod = e.createPod(t, ns, pod)
	e.waitPod(t, ns, pod.Name, 60*time.Second, "running", running)
	read := func() string {
		return e.mustKubectl(t, "", "-n", ns, "exec", pod.Name, "--", "cat", "/var/run/token/token")
	}
	review := func(tok string) {
		t.Helper()
		tr, err := e.client.AuthenticationV1().TokenReviews().Create(context.Background(), &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tok}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !tr.Status.Authenticated || tr.Status.User.Username != "system:serviceaccount:"+ns+":default" {
			t.Errorf("TokenReview: authenticated=%v user=%q error=%q", tr.Status.Authenticated, tr.Status.User.Username, tr.Status.Error)
		}
	}
	first := read()
	review(first)
	iat, exp := tokenTimes(t, first)
	t.Logf("first token: issued %s, expires %s", iat.Format(time.TimeOnly), exp.Format(time.TimeOnly))
	var second string
	e.waitFor(t, exp.Sub(time.Now())+time.Minute, "the token to be replaced", func(ctx context.Context) (bool, error) {
		second = strings.TrimSpace(read())
		if second == strings.TrimSpace(first) {
			time.Sleep(10 * time.Second)
			return false, nil
		}
		return true, nil
	})
	replaced := time.Now()
	t.Logf("replaced at %s: %.0f%% of the first token's lifetime, %v before it expired", replaced.Format(time.TimeOnly),
		100*replaced.Sub(iat).Seconds()/exp.Sub(iat).Seconds(), exp.Sub(replaced).Round(time.Second))
	if !replaced.Before(exp) {
		t.Errorf("the token was replaced at %s, after it expired at %s", replaced, exp)
	}
	review(second)
	e.deletePod(t, ns, pod.Name)
}
