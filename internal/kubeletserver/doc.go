// Package kubeletserver guards and serves Satellite's kubelet API the way the kubelet guards
// its own (pkg/kubelet/server/auth.go): callers are authenticated with x509 client
// certificates against the client CA or bearer tokens through TokenReview, anonymous ones are
// refused, and each request is authorized with a SubjectAccessReview on nodes/<subresource>
// (NewAuth, WithAuth). Reviews go through clients of their own behind a bounded budget
// (NewReviewClients): a request that finds no budget is answered 429, as the apiserver's
// max-in-flight filter answers, instead of queueing. The serving certificate comes from files,
// is self-signed, or is requested with a CSR and renewed by client-go's certificate manager,
// the kubelet's own (ServingCertificate).
//
// cmd/satellite builds one of each at start and serves virtual-kubelet's node/api routes behind
// the handler with the certificate; nothing here knows of pods or the remote host.
package kubeletserver
