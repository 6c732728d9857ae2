package rollup

import (
	"reflect"

	"codeberg.org/monostack/gizmo/services/upnp"
)

// everyService are Stats with every service running, each number a value
// of its own and one reason in each labelled counter. Every Stats field is
// filled, so a service added to Stats has its families checked without a
// change here.
func everyService() Stats {
	var s Stats
	next := uint64(100)
	running(reflect.ValueOf(&s).Elem(), &next)
	s.UPnP.Requests = map[upnp.RequestKey]uint64{{Action: "AddPinhole", Result: "ok"}: 3, {Action: "AddPinhole", Result: "703"}: 1}
	s.UPnP.Pinholes = 2
	return s
}

// running gives every nil pointer to a struct in v a zero value, every
// integer the next value of *next, and every counter map by label one
// reason, "some-reason", counted once.
func running(v reflect.Value, next *uint64) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() && v.Type().Elem().Kind() == reflect.Struct {
			v.Set(reflect.New(v.Type().Elem()))
		}
		if !v.IsNil() {
			running(v.Elem(), next)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				running(v.Field(i), next)
			}
		}
	case reflect.Uint64:
		*next++
		v.SetUint(*next)
	case reflect.Int, reflect.Int64:
		*next++
		v.SetInt(int64(*next))
	case reflect.Map:
		if t := v.Type(); t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.Uint64 {
			v.Set(reflect.MakeMap(t))
			v.SetMapIndex(reflect.ValueOf("some-reason").Convert(t.Key()), reflect.ValueOf(uint64(1)).Convert(t.Elem()))
		}
	}
}
