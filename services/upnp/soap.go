package upnp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// SOAP 1.1 and UPnP control namespaces (UDA 1.1 §3.2.1).
const (
	soapEnvelopeNS = "http://schemas.xmlsoap.org/soap/envelope/"
	soapEncodingNS = "http://schemas.xmlsoap.org/soap/encoding/"
	controlNS      = "urn:schemas-upnp-org:control-1-0"
)

// UPnP error codes: UDA 1.1 §3.2.2 and those of WANIPv6FirewallControl:1's
// actions (§2.6).
const (
	errInvalidAction                     = 401
	errInvalidArgs                       = 402
	errActionFailed                      = 501
	errOptionalActionNotImplemented      = 602
	errActionNotAuthorized               = 606
	errPinholeSpaceExhausted             = 701
	errInboundPinholeNotAllowed          = 703
	errNoSuchEntry                       = 704
	errProtocolNotSupported              = 705
	errInternalPortWildcardingNotAllowed = 706
	errProtocolWildcardingNotAllowed     = 707
	errWildCardNotPermittedInSrcIP       = 708
	errNoPacketSent                      = 709
)

// errorDescriptions are the errorDescription of each code, as the specs
// name them.
var errorDescriptions = map[int]string{
	errInvalidAction:                     "Invalid Action",
	errInvalidArgs:                       "Invalid Args",
	errActionFailed:                      "Action Failed",
	errOptionalActionNotImplemented:      "Optional Action Not Implemented",
	errActionNotAuthorized:               "Action not authorized",
	errPinholeSpaceExhausted:             "PinholeSpaceExhausted",
	errInboundPinholeNotAllowed:          "InboundPinholeNotAllowed",
	errNoSuchEntry:                       "NoSuchEntry",
	errProtocolNotSupported:              "ProtocolNotSupported",
	errInternalPortWildcardingNotAllowed: "InternalPortWildcardingNotAllowed",
	errProtocolWildcardingNotAllowed:     "ProtocolWildcardingNotAllowed",
	errWildCardNotPermittedInSrcIP:       "WildCardNotPermittedInSrcIP",
	errNoPacketSent:                      "NoPacketSent",
}

// Bounds of a control request. The largest action here has six short
// arguments; these leave room for clients that add whitespace or a SOAP
// header, and for nothing else.
const (
	maxBody     = 8 << 10
	maxArgs     = 32
	maxArgValue = 256
)

// call is one parsed control request.
type call struct {
	Action string
	Args   map[string]string
}

// errMalformed marks a request that is not a SOAP control request at all;
// it is answered with HTTP 400, not a UPnP fault.
var errMalformed = errors.New("upnp: malformed control request")

// faultError is a request answered with a UPnP error.
type faultError struct {
	code int
	msg  string
}

func (f *faultError) Error() string {
	return fmt.Sprintf("upnp: %d %s: %s", f.code, errorDescriptions[f.code], f.msg)
}

func fault(code int, format string, args ...any) *faultError {
	return &faultError{code: code, msg: fmt.Sprintf(format, args...)}
}

// parseSOAPAction splits the SOAPACTION header, "urn:...:service:X:1#Action"
// with or without the quotes (UDA 1.1 §3.2.1).
func parseSOAPAction(h string) (serviceType, action string, ok bool) {
	h = strings.TrimSpace(h)
	if len(h) >= 2 && h[0] == '"' && h[len(h)-1] == '"' {
		h = h[1 : len(h)-1]
	}
	i := strings.LastIndexByte(h, '#')
	if i <= 0 || i == len(h)-1 {
		return "", "", false
	}
	return h[:i], h[i+1:], true
}

// parseCall parses a control request to serviceType: the SOAP envelope
// in body and the SOAPACTION header, which must name the same action. An
// envelope that does not parse is errMalformed; a call to another service
// or a mismatched action is a 401 fault.
func parseCall(body []byte, soapAction, serviceType string) (call, error) {
	st, action, ok := parseSOAPAction(soapAction)
	if !ok {
		return call{}, fmt.Errorf("%w: SOAPACTION %q", errMalformed, soapAction)
	}
	if st != serviceType {
		return call{}, fault(errInvalidAction, "service %q is not offered", st)
	}
	if len(body) > maxBody {
		return call{}, fmt.Errorf("%w: body of %d bytes", errMalformed, len(body))
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	// Only UTF-8 (and its ASCII subset) is read: no charset conversion.
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		if strings.EqualFold(label, "utf-8") || strings.EqualFold(label, "us-ascii") {
			return r, nil
		}
		return nil, fmt.Errorf("charset %q", label)
	}
	c := call{Args: map[string]string{}}
	if err := expectStart(d, soapEnvelopeNS, "Envelope"); err != nil {
		return call{}, err
	}
	// SOAP 1.1 §4.1: an optional Header, then the Body.
	for {
		se, err := nextStart(d)
		if err != nil {
			return call{}, err
		}
		if se.Name.Space == soapEnvelopeNS && se.Name.Local == "Header" {
			if err := d.Skip(); err != nil {
				return call{}, fmt.Errorf("%w: %v", errMalformed, err)
			}
			continue
		}
		if se.Name.Space != soapEnvelopeNS || se.Name.Local != "Body" {
			return call{}, fmt.Errorf("%w: <%s> where the Body belongs", errMalformed, se.Name.Local)
		}
		break
	}
	se, err := nextStart(d)
	if err != nil {
		return call{}, err
	}
	if se.Name.Space != serviceType || se.Name.Local != action {
		return call{}, fault(errInvalidAction, "body calls %s#%s, SOAPACTION names %s", se.Name.Space, se.Name.Local, action)
	}
	c.Action = action
	for {
		tok, err := d.Token()
		if err != nil {
			return call{}, fmt.Errorf("%w: %v", errMalformed, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			// The action's end: what follows is the envelope's end.
			return c, nil
		case xml.StartElement:
			if len(c.Args) == maxArgs {
				return call{}, fault(errInvalidArgs, "more than %d arguments", maxArgs)
			}
			name := t.Name.Local
			if _, dup := c.Args[name]; dup {
				return call{}, fault(errInvalidArgs, "argument %s given twice", name)
			}
			v, err := argText(d)
			if err != nil {
				return call{}, err
			}
			c.Args[name] = v
		case xml.Directive:
			return call{}, fmt.Errorf("%w: a directive inside the action", errMalformed)
		}
	}
}

// argText reads an argument's text up to its end tag. An argument holds
// text only.
func argText(d *xml.Decoder) (string, error) {
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("%w: %v", errMalformed, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if b.Len()+len(t) > maxArgValue {
				return "", fault(errInvalidArgs, "an argument longer than %d bytes", maxArgValue)
			}
			b.Write(t)
		case xml.EndElement:
			return b.String(), nil
		case xml.StartElement:
			return "", fault(errInvalidArgs, "argument holds an element <%s>", t.Name.Local)
		case xml.Directive:
			return "", fmt.Errorf("%w: a directive inside an argument", errMalformed)
		}
	}
}

// nextStart returns the next start element, skipping the prolog,
// comments and whitespace. A DOCTYPE or other directive is refused: a
// control request has none, and entity tricks start there.
func nextStart(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("%w: %v", errMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.EndElement:
			return xml.StartElement{}, fmt.Errorf("%w: </%s> before the action", errMalformed, t.Name.Local)
		case xml.Directive:
			return xml.StartElement{}, fmt.Errorf("%w: a directive", errMalformed)
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return xml.StartElement{}, fmt.Errorf("%w: text outside the action", errMalformed)
			}
		}
	}
}

func expectStart(d *xml.Decoder, space, local string) error {
	se, err := nextStart(d)
	if err != nil {
		return err
	}
	if se.Name.Space != space || se.Name.Local != local {
		return fmt.Errorf("%w: root <%s>, want a SOAP Envelope", errMalformed, se.Name.Local)
	}
	return nil
}

// arg is one output argument of a response, in the order the SCPD lists
// them (UDA 1.1 §3.2.1: out arguments in order).
type arg struct {
	Name, Value string
}

// encodeResponse is the SOAP response to action.
func encodeResponse(serviceType, action string, out []arg) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<s:Envelope xmlns:s="` + soapEnvelopeNS + `" s:encodingStyle="` + soapEncodingNS + `"><s:Body>`)
	b.WriteString(`<u:` + action + `Response xmlns:u="` + serviceType + `">`)
	for _, a := range out {
		b.WriteString("<" + a.Name + ">")
		xml.EscapeText(&b, []byte(a.Value))
		b.WriteString("</" + a.Name + ">")
	}
	b.WriteString(`</u:` + action + `Response></s:Body></s:Envelope>` + "\n")
	return b.Bytes()
}

// encodeFault is the SOAP fault that carries a UPnP error (UDA 1.1
// §3.2.2), sent with HTTP 500.
func encodeFault(code int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<s:Envelope xmlns:s="` + soapEnvelopeNS + `" s:encodingStyle="` + soapEncodingNS + `"><s:Body><s:Fault>`)
	b.WriteString(`<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>`)
	b.WriteString(`<UPnPError xmlns="` + controlNS + `"><errorCode>` + strconv.Itoa(code) + `</errorCode><errorDescription>`)
	xml.EscapeText(&b, []byte(errorDescriptions[code]))
	b.WriteString(`</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>` + "\n")
	return b.Bytes()
}
