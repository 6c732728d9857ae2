package upnp

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// envelope wraps an action element the way miniupnpc sends it.
func envelope(body string) string {
	return `<?xml version="1.0"?>` + "\r\n" +
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">` +
		`<s:Body>` + body + `</s:Body></s:Envelope>` + "\r\n"
}

const addPinholeBody = `<u:AddPinhole xmlns:u="urn:schemas-upnp-org:service:WANIPv6FirewallControl:1">` +
	`<RemoteHost></RemoteHost><RemotePort>0</RemotePort><Protocol>6</Protocol><InternalPort>8090</InternalPort>` +
	`<InternalClient>2001:db8:1000:100::5</InternalClient><LeaseTime>3600</LeaseTime></u:AddPinhole>`

const addPinholeAction = `"urn:schemas-upnp-org:service:WANIPv6FirewallControl:1#AddPinhole"`

func TestParseCall(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		action string
		want   call
		code   int  // a UPnP fault with this code
		bad    bool // errMalformed
	}{
		{name: "UDA 1.1 3.2.1: miniupnpc's AddPinhole", body: envelope(addPinholeBody), action: addPinholeAction,
			want: call{Action: "AddPinhole", Args: map[string]string{
				"RemoteHost": "", "RemotePort": "0", "Protocol": "6", "InternalPort": "8090",
				"InternalClient": "2001:db8:1000:100::5", "LeaseTime": "3600",
			}}},
		{name: "UDA 1.1 3.2.1: SOAPACTION without quotes", body: envelope(addPinholeBody),
			action: `urn:schemas-upnp-org:service:WANIPv6FirewallControl:1#AddPinhole`,
			want: call{Action: "AddPinhole", Args: map[string]string{
				"RemoteHost": "", "RemotePort": "0", "Protocol": "6", "InternalPort": "8090",
				"InternalClient": "2001:db8:1000:100::5", "LeaseTime": "3600",
			}}},
		{name: "SOAP 1.1 4.2: a Header before the Body is skipped",
			body: strings.Replace(envelope(`<u:GetFirewallStatus xmlns:u="urn:schemas-upnp-org:service:WANIPv6FirewallControl:1"/>`),
				"<s:Body>", "<s:Header><x:y xmlns:x=\"urn:x\">z</x:y></s:Header><s:Body>", 1),
			action: `"urn:schemas-upnp-org:service:WANIPv6FirewallControl:1#GetFirewallStatus"`,
			want:   call{Action: "GetFirewallStatus", Args: map[string]string{}}},
		{name: "an argument's entities are decoded", body: envelope(`<u:DeletePinhole xmlns:u="urn:schemas-upnp-org:service:WANIPv6FirewallControl:1"><UniqueID>&#x31;&#50;</UniqueID></u:DeletePinhole>`),
			action: `"urn:schemas-upnp-org:service:WANIPv6FirewallControl:1#DeletePinhole"`,
			want:   call{Action: "DeletePinhole", Args: map[string]string{"UniqueID": "12"}}},
		{name: "UDA 1.1 3.2.2: another service is 401", body: envelope(addPinholeBody),
			action: `"urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping"`, code: errInvalidAction},
		{name: "UDA 1.1 3.2.2: the body's action must be SOAPACTION's", body: envelope(addPinholeBody),
			action: `"urn:schemas-upnp-org:service:WANIPv6FirewallControl:1#DeletePinhole"`, code: errInvalidAction},
		{name: "the body's action in another namespace is 401",
			body:   envelope(strings.Replace(addPinholeBody, "WANIPv6FirewallControl:1\"", "WANIPConnection:1\"", 1)),
			action: addPinholeAction, code: errInvalidAction},
		{name: "an argument given twice is 402",
			body:   envelope(strings.Replace(addPinholeBody, "<RemotePort>0</RemotePort>", "<RemotePort>0</RemotePort><RemotePort>1</RemotePort>", 1)),
			action: addPinholeAction, code: errInvalidArgs},
		{name: "an argument holding an element is 402",
			body:   envelope(strings.Replace(addPinholeBody, "<RemotePort>0</RemotePort>", "<RemotePort><x>0</x></RemotePort>", 1)),
			action: addPinholeAction, code: errInvalidArgs},
		{name: "an argument longer than 256 bytes is 402",
			body:   envelope(strings.Replace(addPinholeBody, "<RemoteHost></RemoteHost>", "<RemoteHost>"+strings.Repeat("a", 300)+"</RemoteHost>", 1)),
			action: addPinholeAction, code: errInvalidArgs},
		{name: "more than 32 arguments is 402",
			body:   envelope(strings.Replace(addPinholeBody, "<RemoteHost></RemoteHost>", manyArgs(40), 1)),
			action: addPinholeAction, code: errInvalidArgs},
		{name: "no SOAPACTION is malformed", body: envelope(addPinholeBody), action: "", bad: true},
		{name: "SOAPACTION without an action is malformed", body: envelope(addPinholeBody), action: `"urn:schemas-upnp-org:service:WANIPv6FirewallControl:1#"`, bad: true},
		{name: "a DOCTYPE is refused before any entity is defined", body: `<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa">]>` + envelope(addPinholeBody)[21:], action: addPinholeAction, bad: true},
		{name: "an undefined entity is malformed", body: envelope(strings.Replace(addPinholeBody, "8090", "&a;", 1)), action: addPinholeAction, bad: true},
		{name: "not a SOAP envelope", body: addPinholeBody, action: addPinholeAction, bad: true},
		{name: "no Body", body: `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">` + addPinholeBody + `</s:Envelope>`, action: addPinholeAction, bad: true},
		{name: "cut short", body: envelope(addPinholeBody)[:200], action: addPinholeAction, bad: true},
		{name: "another charset", body: strings.Replace(envelope(addPinholeBody), `<?xml version="1.0"?>`, `<?xml version="1.0" encoding="ISO-8859-1"?>`, 1), action: addPinholeAction, bad: true},
		{name: "a body above 8 KiB", body: envelope(addPinholeBody) + strings.Repeat(" ", maxBody), action: addPinholeAction, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCall([]byte(tc.body), tc.action, firewallService)
			var f *faultError
			switch {
			case tc.bad:
				if !errors.Is(err, errMalformed) {
					t.Fatalf("err = %v, want malformed", err)
				}
			case tc.code != 0:
				if !errors.As(err, &f) || f.code != tc.code {
					t.Fatalf("err = %v, want fault %d", err, tc.code)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("call (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func manyArgs(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("<X" + strings.Repeat("x", i) + "/>")
	}
	return b.String()
}

// A response and a fault are XML that a control point reads back: the out
// arguments in order, the error code and description in UPnPError.
func TestEncodeResponseAndFault(t *testing.T) {
	resp := encodeResponse(firewallService, "AddPinhole", []arg{{"UniqueID", "7"}})
	c, err := parseCall(resp, `"`+firewallService+`#AddPinholeResponse"`, firewallService)
	if err != nil {
		t.Fatalf("the response does not parse back: %v\n%s", err, resp)
	}
	if c.Args["UniqueID"] != "7" {
		t.Errorf("UniqueID = %q, want 7", c.Args["UniqueID"])
	}

	var env struct {
		Body struct {
			Fault struct {
				Code   string `xml:"faultcode"`
				String string `xml:"faultstring"`
				Detail struct {
					Err struct {
						Code int    `xml:"errorCode"`
						Desc string `xml:"errorDescription"`
					} `xml:"urn:schemas-upnp-org:control-1-0 UPnPError"`
				} `xml:"detail"`
			} `xml:"Fault"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(encodeFault(errActionNotAuthorized), &env); err != nil {
		t.Fatal(err)
	}
	f := env.Body.Fault
	if f.Code != "s:Client" || f.String != "UPnPError" || f.Detail.Err.Code != 606 || f.Detail.Err.Desc != "Action not authorized" {
		t.Errorf("fault = %+v, want s:Client UPnPError 606 Action not authorized", f)
	}
}

// FuzzParseCall: any body and SOAPACTION give a call, a fault or
// errMalformed, never a panic, and a call stays within the bounds.
func FuzzParseCall(f *testing.F) {
	f.Add([]byte(envelope(addPinholeBody)), addPinholeAction)
	f.Add([]byte(envelope(`<u:GetFirewallStatus xmlns:u="urn:schemas-upnp-org:service:WANIPv6FirewallControl:1"></u:GetFirewallStatus>`)),
		`"urn:schemas-upnp-org:service:WANIPv6FirewallControl:1#GetFirewallStatus"`)
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "&e;&e;">]><x>&e;</x>`), addPinholeAction)
	f.Add([]byte(envelope(`<u:AddPinhole xmlns:u="urn:schemas-upnp-org:service:WANIPv6FirewallControl:1"><a><b/></a></u:AddPinhole>`)), addPinholeAction)
	f.Fuzz(func(t *testing.T, body []byte, action string) {
		c, err := parseCall(body, action, firewallService)
		if err != nil {
			var fe *faultError
			if !errors.Is(err, errMalformed) && !errors.As(err, &fe) {
				t.Fatalf("error of another kind: %v", err)
			}
			return
		}
		if c.Action == "" || len(c.Args) > maxArgs {
			t.Fatalf("call %q with %d arguments", c.Action, len(c.Args))
		}
		for k, v := range c.Args {
			if len(v) > maxArgValue {
				t.Fatalf("argument %s of %d bytes", k, len(v))
			}
		}
	})
}
