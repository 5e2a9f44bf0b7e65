package ec2stub

import (
	"encoding/xml"
	"net/url"
	"regexp"
	"sort"
)

type stateXML struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type instanceXML struct {
	InstanceID     string   `xml:"instanceId"`
	State          stateXML `xml:"instanceState"`
	PrivateDNSName string   `xml:"privateDnsName"`
	DNSName        string   `xml:"dnsName"`
	PrivateIP      string   `xml:"privateIpAddress,omitempty"`
	PublicIP       string   `xml:"ipAddress,omitempty"`
	InstanceType   string   `xml:"instanceType,omitempty"`
	Placement      struct {
		AvailabilityZone string `xml:"availabilityZone,omitempty"`
	} `xml:"placement"`
	Tags []tagXML `xml:"tagSet>item"`
}

type reservationXML struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []instanceXML `xml:"instancesSet>item"`
}

type describeInstancesResponse struct {
	XMLName      xml.Name         `xml:"DescribeInstancesResponse"`
	Xmlns        string           `xml:"xmlns,attr"`
	RequestID    string           `xml:"requestId"`
	Reservations []reservationXML `xml:"reservationSet>item"`
}

// stateCodes are EC2's instance state codes.
var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

var instanceIDPattern = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)

func (s *Server) describeInstances(form url.Values) (any, *apiError) {
	picked, err := pick(form, "InstanceId", s.instances, instanceIDPattern, func(id string) *apiError {
		return badRequest("InvalidInstanceID.Malformed", "Invalid id: %q", id)
	}, func(id string) *apiError {
		return badRequest("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
	})
	if err != nil {
		return nil, err
	}
	if picked, err = matching(picked, filters(form), matchInstance); err != nil {
		return nil, err
	}
	sort.Slice(picked, func(a, b int) bool { return picked[a].ID < picked[b].ID })
	resp := describeInstancesResponse{Xmlns: Namespace, RequestID: requestID}
	for _, i := range picked {
		x := instanceXML{InstanceID: i.ID, State: stateXML{stateCodes[i.State], i.State},
			PrivateIP: i.PrivateIP, PrivateDNSName: s.privateDNS(i.PrivateIP), PublicIP: i.PublicIP, Tags: tagsXML(i.Tags),
			InstanceType: i.Type}
		x.Placement.AvailabilityZone = i.Zone
		// One reservation per instance, as separate launches give.
		resp.Reservations = append(resp.Reservations, reservationXML{ReservationID: "r-" + i.ID[2:], OwnerID: Account, Instances: []instanceXML{x}})
	}
	return resp, nil
}

func matchInstance(i *Instance, fs map[string][]string) (bool, *apiError) {
	return matchFilters(fs, i.Tags, func(name string) (string, bool) {
		switch name {
		case "instance-id":
			return i.ID, true
		case "instance-state-name":
			return i.State, true
		case "private-ip-address":
			return i.PrivateIP, true
		case "ip-address":
			return i.PublicIP, true
		}
		return "", false
	})
}
