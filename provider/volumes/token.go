package volumes

import (
	"context"
	"errors"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
)

// issuedToken is a service account token the pod's volume holds.
type issuedToken struct {
	token     string
	refreshAt time.Time
	expires   time.Time
}

// token returns a service account token for the projection, from the TokenRequest API, bound
// to the pod; it is requested again once 80 % of its lifetime (at most 24 h) has passed.
func (m *Manager) token(ctx context.Context, st *podState, pod *corev1.Pod, volume string, proj *corev1.ServiceAccountTokenProjection) (string, error) {
	key := volume + "/" + proj.Path
	if t, ok := st.tokens[key]; ok && time.Now().Before(t.refreshAt) {
		return t.token, nil
	}
	if m.tokens == nil {
		return "", errors.New("no access to the TokenRequest API")
	}
	exp := int64(3600)
	if proj.ExpirationSeconds != nil {
		exp = *proj.ExpirationSeconds
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &exp,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if proj.Audience != "" {
		tr.Spec.Audiences = []string{proj.Audience}
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	issued := time.Now()
	resp, err := m.tokens.CreateToken(ctx, pod.Namespace, sa, tr)
	if err != nil {
		return "", fmt.Errorf("failed to fetch token: %w", err)
	}
	life := resp.Status.ExpirationTimestamp.Sub(issued)
	refresh := min(life*8/10, 24*time.Hour)
	st.tokens[key] = issuedToken{token: resp.Status.Token, refreshAt: issued.Add(refresh), expires: resp.Status.ExpirationTimestamp.Time}
	return resp.Status.Token, nil
}
