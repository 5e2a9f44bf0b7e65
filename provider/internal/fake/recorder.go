package fake

import "k8s.io/client-go/tools/record"

// Events drains what a FakeRecorder holds now, oldest first.
func Events(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}
