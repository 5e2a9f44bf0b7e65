package ec2stub

import (
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type groupXML struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type attachmentXML struct {
	AttachmentID        string `xml:"attachmentId"`
	InstanceID          string `xml:"instanceId"`
	InstanceOwnerID     string `xml:"instanceOwnerId"`
	DeviceIndex         int    `xml:"deviceIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type eniXML struct {
	NetworkInterfaceID string         `xml:"networkInterfaceId"`
	SubnetID           string         `xml:"subnetId"`
	VPCID              string         `xml:"vpcId"`
	AvailabilityZone   string         `xml:"availabilityZone"`
	Description        string         `xml:"description"`
	OwnerID            string         `xml:"ownerId"`
	RequesterManaged   bool           `xml:"requesterManaged"`
	Status             string         `xml:"status"`
	MacAddress         string         `xml:"macAddress"`
	PrivateIPAddress   string         `xml:"privateIpAddress"`
	PrivateDNSName     string         `xml:"privateDnsName"`
	SourceDestCheck    bool           `xml:"sourceDestCheck"`
	InterfaceType      string         `xml:"interfaceType"`
	Groups             []groupXML     `xml:"groupSet>item"`
	Attachment         *attachmentXML `xml:"attachment,omitempty"`
	Tags               []tagXML       `xml:"tagSet>item"`
}

type describeENIsResponse struct {
	XMLName   xml.Name `xml:"DescribeNetworkInterfacesResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	ENIs      []eniXML `xml:"networkInterfaceSet>item"`
}

type createENIResponse struct {
	XMLName     xml.Name `xml:"CreateNetworkInterfaceResponse"`
	Xmlns       string   `xml:"xmlns,attr"`
	RequestID   string   `xml:"requestId"`
	ENI         eniXML   `xml:"networkInterface"`
	ClientToken string   `xml:"clientToken,omitempty"`
}

type returnResponse struct {
	XMLName   xml.Name
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
	Return    bool   `xml:"return"`
}

func (s *Server) eniXML(e *ENI, status string) eniXML {
	x := eniXML{
		NetworkInterfaceID: e.ID, SubnetID: e.Subnet, VPCID: e.VPC, AvailabilityZone: e.AZ,
		Description: e.Description, OwnerID: Account, Status: status,
		MacAddress:       macAddress(e.ID),
		PrivateIPAddress: e.PrivateIP, PrivateDNSName: s.privateDNS(e.PrivateIP),
		SourceDestCheck: true, InterfaceType: "interface", Tags: tagsXML(e.Tags),
	}
	for _, g := range e.Groups {
		x.Groups = append(x.Groups, groupXML{GroupID: g, GroupName: g})
	}
	if e.Instance != "" {
		x.Attachment = &attachmentXML{AttachmentID: "eni-attach-" + e.ID[4:], InstanceID: e.Instance,
			InstanceOwnerID: Account, DeviceIndex: 1, Status: "attached", AttachTime: "2024-05-01T10:00:00.000Z"}
	}
	return x
}

func eniStatus(e *ENI) string {
	if e.Instance != "" {
		return "in-use"
	}
	return "available"
}

var eniIDPattern = regexp.MustCompile(`^eni-[0-9a-f]{8,17}$`)

func (s *Server) describeNetworkInterfaces(form url.Values) (any, *apiError) {
	picked, err := pick(form, "NetworkInterfaceId", s.enis, eniIDPattern, func(id string) *apiError {
		return badRequest("InvalidNetworkInterfaceID.Malformed", "Invalid id: %q (expecting \"eni-...\")", id)
	}, func(id string) *apiError {
		return badRequest("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist", id)
	})
	if err != nil {
		return nil, err
	}
	if picked, err = matching(picked, filters(form), matchENI); err != nil {
		return nil, err
	}
	resp := describeENIsResponse{Xmlns: Namespace, RequestID: requestID}
	for _, e := range picked {
		resp.ENIs = append(resp.ENIs, s.eniXML(e, eniStatus(e)))
	}
	sort.Slice(resp.ENIs, func(i, j int) bool { return resp.ENIs[i].NetworkInterfaceID < resp.ENIs[j].NetworkInterfaceID })
	return resp, nil
}

// matchENI applies DescribeNetworkInterfaces filters: every filter must match, any of its values.
func matchENI(e *ENI, fs map[string][]string) (bool, *apiError) {
	return matchFilters(fs, e.Tags, func(name string) (string, bool) {
		switch name {
		case "vpc-id":
			return e.VPC, true
		case "subnet-id":
			return e.Subnet, true
		case "availability-zone":
			return e.AZ, true
		case "network-interface-id":
			return e.ID, true
		case "private-ip-address", "addresses.private-ip-address":
			return e.PrivateIP, true
		case "status":
			return eniStatus(e), true
		case "attachment.status":
			// An ENI that is not attached has no attachment, so no status to match.
			if e.Instance == "" {
				return "", true
			}
			return "attached", true
		case "attachment.instance-id":
			return e.Instance, true
		}
		return "", false
	})
}

func (s *Server) createNetworkInterface(form url.Values) (any, *apiError) {
	token := form.Get("ClientToken")
	if id, ok := s.tokens[token]; ok && token != "" {
		// EC2's idempotency: the same token answers the ENI the first call made.
		e := s.enis[id]
		if e == nil {
			e = &ENI{ID: id}
		}
		return createENIResponse{Xmlns: Namespace, RequestID: requestID, ENI: s.eniXML(e, "pending"), ClientToken: token}, nil
	}
	subnetID := form.Get("SubnetId")
	sub, ok := s.subnets[subnetID]
	if !ok {
		return nil, badRequest("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", subnetID)
	}
	groups := list(form, "SecurityGroupId")
	for _, g := range groups {
		vpc, ok := s.groups[g]
		if !ok {
			return nil, badRequest("InvalidSecurityGroupID.NotFound", "The securityGroup ID '%s' does not exist", g)
		}
		if vpc != sub.VPC {
			return nil, badRequest("InvalidParameter", "Security group %s and subnet %s belong to different networks.", g, subnetID)
		}
	}
	tags := map[string]string{}
	for i := 1; ; i++ {
		p := "TagSpecification." + strconv.Itoa(i)
		rt := form.Get(p + ".ResourceType")
		if rt == "" {
			break
		}
		if rt != "network-interface" {
			return nil, badRequest("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt)
		}
		for k, v := range tagList(form, p+".Tag") {
			tags[k] = v
		}
	}
	ip := sub.next
	if !sub.CIDR.Contains(ip) {
		return nil, badRequest("InsufficientFreeAddressesInSubnet", "The specified subnet %s does not have enough free addresses to satisfy the request.", subnetID)
	}
	sub.next = ip.Next()
	e := &ENI{ID: s.newID("eni"), Subnet: subnetID, VPC: sub.VPC, AZ: sub.AZ, PrivateIP: ip.String(),
		Description: form.Get("Description"), Groups: groups, Tags: tags, ClientToken: token}
	s.enis[e.ID] = e
	if token != "" {
		s.tokens[token] = e.ID
	}
	return createENIResponse{Xmlns: Namespace, RequestID: requestID, ENI: s.eniXML(e, "pending"), ClientToken: token}, nil
}

func (s *Server) deleteNetworkInterface(form url.Values) (any, *apiError) {
	id := form.Get("NetworkInterfaceId")
	if !eniIDPattern.MatchString(id) {
		return nil, badRequest("InvalidNetworkInterfaceID.Malformed", "Invalid id: %q (expecting \"eni-...\")", id)
	}
	e, ok := s.enis[id]
	if !ok {
		return nil, badRequest("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist", id)
	}
	if e.Instance != "" {
		return nil, badRequest("InvalidNetworkInterface.InUse", "The network interface %s is currently in use.", id)
	}
	delete(s.enis, id)
	return returnResponse{XMLName: xml.Name{Local: "DeleteNetworkInterfaceResponse"}, Xmlns: Namespace, RequestID: requestID, Return: true}, nil
}

func (s *Server) createTags(form url.Values) (any, *apiError) {
	tags := tagList(form, "Tag")
	for _, id := range list(form, "ResourceId") {
		var target map[string]string
		switch {
		case strings.HasPrefix(id, "eni-") && s.enis[id] != nil:
			target = s.enis[id].Tags
		case strings.HasPrefix(id, "i-") && s.instances[id] != nil:
			target = s.instances[id].Tags
		case strings.HasPrefix(id, "i-"):
			return nil, badRequest("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		default:
			return nil, badRequest("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist", id)
		}
		for k, v := range tags {
			target[k] = v
		}
	}
	return returnResponse{XMLName: xml.Name{Local: "CreateTagsResponse"}, Xmlns: Namespace, RequestID: requestID, Return: true}, nil
}

// macAddress is a stable locally administered MAC for an ENI ID.
func macAddress(id string) string {
	sum := sha256.Sum256([]byte(id))
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", sum[0], sum[1], sum[2], sum[3], sum[4])
}
