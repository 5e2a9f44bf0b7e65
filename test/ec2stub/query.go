package ec2stub

import (
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// list reads prefix.1, prefix.2, ... from a form.
func list(form url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[prefix+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// filters reads Filter.N.Name and Filter.N.Value.M.
func filters(form url.Values) map[string][]string {
	out := map[string][]string{}
	for i := 1; ; i++ {
		p := "Filter." + strconv.Itoa(i)
		name := form.Get(p + ".Name")
		if name == "" {
			return out
		}
		out[name] = append(out[name], list(form, p+".Value")...)
	}
}

// tagList reads prefix.N.Key and prefix.N.Value.
func tagList(form url.Values, prefix string) map[string]string {
	out := map[string]string{}
	for i := 1; ; i++ {
		p := prefix + "." + strconv.Itoa(i)
		k, ok := form[p+".Key"]
		if !ok {
			return out
		}
		out[k[0]] = form.Get(p + ".Value")
	}
}

// matchTags applies the tag:<key> and tag-key filters; ok is false for any other filter.
func matchTags(name string, values []string, tags map[string]string) (match, ok bool) {
	switch {
	case strings.HasPrefix(name, "tag:"):
		v, has := tags[strings.TrimPrefix(name, "tag:")]
		return has && contains(values, v), true
	case name == "tag-key":
		for _, k := range values {
			if _, has := tags[k]; has {
				return true, true
			}
		}
		return false, true
	}
	return false, false
}

func contains(values []string, v string) bool {
	for _, x := range values {
		if x == v {
			return true
		}
	}
	return false
}

func copyTags(t map[string]string) map[string]string {
	c := make(map[string]string, len(t))
	for k, v := range t {
		c[k] = v
	}
	return c
}

type tagXML struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func tagsXML(t map[string]string) []tagXML {
	var out []tagXML
	for k, v := range t {
		out = append(out, tagXML{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// privateDNS is EC2's private DNS name of an address in the region.
func (s *Server) privateDNS(ip string) string {
	if ip == "" {
		return ""
	}
	suffix := s.Region + ".compute.internal"
	if s.Region == "us-east-1" {
		suffix = "ec2.internal"
	}
	return "ip-" + strings.ReplaceAll(ip, ".", "-") + "." + suffix
}

// pick returns the objects the form's param.1, param.2, ... name, or every object when it
// names none, in ID order. An id that does not match pattern is malformed(id), one not in all
// is notFound(id): EC2's two answers.
func pick[T any](form url.Values, param string, all map[string]*T, pattern *regexp.Regexp, malformed, notFound func(id string) *apiError) ([]*T, *apiError) {
	ids := list(form, param)
	if len(ids) == 0 {
		ids = slices.Sorted(maps.Keys(all))
	}
	picked := make([]*T, 0, len(ids))
	for _, id := range ids {
		if !pattern.MatchString(id) {
			return nil, malformed(id)
		}
		v, ok := all[id]
		if !ok {
			return nil, notFound(id)
		}
		picked = append(picked, v)
	}
	return picked, nil
}

// matching keeps the objects every filter matches (match says whether one does, or that a
// filter is invalid).
func matching[T any](picked []*T, fs map[string][]string, match func(*T, map[string][]string) (bool, *apiError)) ([]*T, *apiError) {
	var out []*T
	for _, v := range picked {
		ok, err := match(v, fs)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, v)
		}
	}
	return out, nil
}

// matchFilters applies EC2's filters to an object: every filter must match, any of its values.
// field gives the object's value for a filter of its own (known false: not one; then it is a
// tag filter, or invalid); an empty value matches no filter value (an absent attribute).
func matchFilters(fs map[string][]string, tags map[string]string, field func(name string) (v string, known bool)) (bool, *apiError) {
	for name, values := range fs {
		v, known := field(name)
		if !known {
			match, ok := matchTags(name, values, tags)
			if !ok {
				return false, badRequest("InvalidParameterValue", "The filter '%s' is invalid", name)
			}
			if !match {
				return false, nil
			}
			continue
		}
		if !contains(values, v) {
			return false, nil
		}
	}
	return true, nil
}
