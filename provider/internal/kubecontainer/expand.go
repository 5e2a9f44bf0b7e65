package kubecontainer

import "strings"

// Expand expands $(VAR) references as the kubelet does (third_party/forked/golang/expansion):
// a defined VAR is replaced, an undefined one is left as written, $$ is an escaped $, and any
// other $ is kept.
func Expand(in string, mapping func(string) (string, bool)) string {
	var b strings.Builder
	checkpoint := 0
	for i := 0; i < len(in); i++ {
		if in[i] != '$' || i+1 >= len(in) {
			continue
		}
		b.WriteString(in[checkpoint:i])
		next := in[i+1]
		switch {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '(':
			end := strings.IndexByte(in[i+2:], ')')
			if end < 0 {
				b.WriteString("$(") // an unterminated reference stays as it is
				i++
				break
			}
			name := in[i+2 : i+2+end]
			if v, ok := mapping(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += end + 2
		default:
			b.WriteByte('$')
			b.WriteByte(next)
			i++
		}
		checkpoint = i + 1
	}
	return b.String() + in[checkpoint:]
}

// MappingFor is Expand's mapping for a map of variables.
func MappingFor(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}
