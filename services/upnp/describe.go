package upnp

import (
	"bytes"
	"encoding/xml"

	"github.com/google/uuid"
)

// The device tree of IGD:2 down to the one service it offers
// (InternetGatewayDevice:2 §2.1: the WANIPv6FirewallControl service lives
// in the WANConnectionDevice of a WANDevice).
const (
	rootDeviceType    = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
	wanDeviceType     = "urn:schemas-upnp-org:device:WANDevice:2"
	wanConnDeviceType = "urn:schemas-upnp-org:device:WANConnectionDevice:2"
	firewallService   = "urn:schemas-upnp-org:service:WANIPv6FirewallControl:1"
	firewallServiceID = "urn:upnp-org:serviceId:WANIPv6FC1"
)

// Paths of the HTTP server.
const (
	descPath    = "/rootDesc.xml"
	scpdPath    = "/WANIPv6FC.xml"
	controlPath = "/ctl/WANIPv6FC"
)

// devices are the UDNs of the three devices, derived from the plan's
// UUID so that they too stay the same across restarts.
type devices struct {
	root, wan, wanConn string
}

func devicesOf(p Plan) devices {
	root, err := uuid.Parse(p.UUID)
	if err != nil {
		return devices{}
	}
	return devices{
		root:    "uuid:" + root.String(),
		wan:     "uuid:" + uuid.NewSHA1(root, []byte(wanDeviceType)).String(),
		wanConn: "uuid:" + uuid.NewSHA1(root, []byte(wanConnDeviceType)).String(),
	}
}

// xmlDevice is a device element of the description (UDA 1.1 §2.3).
type xmlDevice struct {
	DeviceType      string       `xml:"deviceType"`
	FriendlyName    string       `xml:"friendlyName"`
	Manufacturer    string       `xml:"manufacturer"`
	ModelName       string       `xml:"modelName"`
	UDN             string       `xml:"UDN"`
	Services        []xmlService `xml:"serviceList>service,omitempty"`
	Devices         []xmlDevice  `xml:"deviceList>device,omitempty"`
	PresentationURL string       `xml:"presentationURL,omitempty"`
}

type xmlService struct {
	ServiceType string `xml:"serviceType"`
	ServiceID   string `xml:"serviceId"`
	SCPDURL     string `xml:"SCPDURL"`
	ControlURL  string `xml:"controlURL"`
	// EventSubURL is empty: no evented state variables (see the package
	// doc), and UDA 1.1 §2.3 leaves it empty then.
	EventSubURL string `xml:"eventSubURL"`
}

type xmlSpecVersion struct {
	Major int `xml:"major"`
	Minor int `xml:"minor"`
}

type xmlRoot struct {
	XMLName     xml.Name       `xml:"urn:schemas-upnp-org:device-1-0 root"`
	ConfigID    int            `xml:"configId,attr"`
	SpecVersion xmlSpecVersion `xml:"specVersion"`
	Device      xmlDevice      `xml:"device"`
}

// configID is CONFIGID.UPNP.ORG and the description's configId (UDA 1.1
// §1.1.4): it changes only when the descriptions do.
const configID = 1

// description is the device description. It has no whitespace between
// elements, which some control points' minimal parsers take for text.
func description(p Plan) []byte {
	d := devicesOf(p)
	dev := func(typ, name, udn string) xmlDevice {
		return xmlDevice{DeviceType: typ, FriendlyName: name, Manufacturer: "gizmo", ModelName: "gizmo", UDN: udn}
	}
	conn := dev(wanConnDeviceType, "gizmo WAN connection", d.wanConn)
	conn.Services = []xmlService{{
		ServiceType: firewallService, ServiceID: firewallServiceID,
		SCPDURL: scpdPath, ControlURL: controlPath,
	}}
	wan := dev(wanDeviceType, "gizmo WAN", d.wan)
	wan.Devices = []xmlDevice{conn}
	root := dev(rootDeviceType, "gizmo", d.root)
	root.Devices = []xmlDevice{wan}
	root.PresentationURL = p.PresentationURL
	return marshal(xmlRoot{ConfigID: configID, SpecVersion: xmlSpecVersion{1, 1}, Device: root})
}

// scpd is the service description (UDA 1.1 §2.5) of what is implemented:
// every action of WANIPv6FirewallControl:1 but GetPinholePackets, whose
// count no part of the gizmo keeps (doc.go).
func scpd() []byte {
	type xmlArg struct {
		Name      string `xml:"name"`
		Direction string `xml:"direction"`
		Related   string `xml:"relatedStateVariable"`
	}
	type xmlAction struct {
		Name string   `xml:"name"`
		Args []xmlArg `xml:"argumentList>argument,omitempty"`
	}
	type xmlRange struct {
		Minimum int `xml:"minimum"`
		Maximum int `xml:"maximum"`
	}
	type xmlVar struct {
		SendEvents string    `xml:"sendEvents,attr"`
		Name       string    `xml:"name"`
		DataType   string    `xml:"dataType"`
		Range      *xmlRange `xml:"allowedValueRange,omitempty"`
	}
	type xmlSCPD struct {
		XMLName     xml.Name       `xml:"urn:schemas-upnp-org:service-1-0 scpd"`
		ConfigID    int            `xml:"configId,attr"`
		SpecVersion xmlSpecVersion `xml:"specVersion"`
		Actions     []xmlAction    `xml:"actionList>action"`
		Vars        []xmlVar       `xml:"serviceStateTable>stateVariable"`
	}
	in := func(name, v string) xmlArg { return xmlArg{name, "in", v} }
	out := func(name, v string) xmlArg { return xmlArg{name, "out", v} }
	tuple := []xmlArg{
		in("RemoteHost", "A_ARG_TYPE_IPv6Address"), in("RemotePort", "A_ARG_TYPE_Port"),
		in("InternalClient", "A_ARG_TYPE_IPv6Address"), in("InternalPort", "A_ARG_TYPE_Port"),
		in("Protocol", "A_ARG_TYPE_Protocol"),
	}
	s := xmlSCPD{ConfigID: configID, SpecVersion: xmlSpecVersion{1, 1}}
	s.Actions = []xmlAction{
		{Name: "GetFirewallStatus", Args: []xmlArg{out("FirewallEnabled", "FirewallEnabled"), out("InboundPinholeAllowed", "InboundPinholeAllowed")}},
		{Name: "GetOutboundPinholeTimeout", Args: append(tuple[:5:5], out("OutboundPinholeTimeout", "A_ARG_TYPE_OutboundPinholeTimeout"))},
		{Name: "AddPinhole", Args: append(tuple[:5:5], in("LeaseTime", "A_ARG_TYPE_LeaseTime"), out("UniqueID", "A_ARG_TYPE_UniqueID"))},
		{Name: "UpdatePinhole", Args: []xmlArg{in("UniqueID", "A_ARG_TYPE_UniqueID"), in("NewLeaseTime", "A_ARG_TYPE_LeaseTime")}},
		{Name: "DeletePinhole", Args: []xmlArg{in("UniqueID", "A_ARG_TYPE_UniqueID")}},
		{Name: "CheckPinholeWorking", Args: []xmlArg{in("UniqueID", "A_ARG_TYPE_UniqueID"), out("IsWorking", "A_ARG_TYPE_Boolean")}},
	}
	s.Vars = []xmlVar{
		{SendEvents: "no", Name: "FirewallEnabled", DataType: "boolean"},
		{SendEvents: "no", Name: "InboundPinholeAllowed", DataType: "boolean"},
		{SendEvents: "no", Name: "A_ARG_TYPE_OutboundPinholeTimeout", DataType: "ui4"},
		{SendEvents: "no", Name: "A_ARG_TYPE_IPv6Address", DataType: "string"},
		{SendEvents: "no", Name: "A_ARG_TYPE_Port", DataType: "ui2"},
		{SendEvents: "no", Name: "A_ARG_TYPE_Protocol", DataType: "ui2"},
		{SendEvents: "no", Name: "A_ARG_TYPE_LeaseTime", DataType: "ui4", Range: &xmlRange{1, maxLeaseSeconds}},
		{SendEvents: "no", Name: "A_ARG_TYPE_UniqueID", DataType: "ui2"},
		{SendEvents: "no", Name: "A_ARG_TYPE_Boolean", DataType: "boolean"},
	}
	return marshal(s)
}

func marshal(v any) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	if err := xml.NewEncoder(&b).Encode(v); err != nil {
		// The values are this file's own types: an error is a bug here.
		panic("upnp: description: " + err.Error())
	}
	b.WriteByte('\n')
	return b.Bytes()
}
