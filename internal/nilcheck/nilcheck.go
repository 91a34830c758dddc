// Package nilcheck tells a nil dependency from a usable one, typed nils
// included: a nil *T in an interface is not == nil, yet calling it panics.
package nilcheck

import (
	"fmt"
	"reflect"
)

// IsNil reports whether v is nil or holds a nil pointer, func, map,
// channel, slice or interface.
func IsNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Chan, reflect.Slice, reflect.Interface, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

// Name describes a nil v for an error message: "nil", or the type of a
// typed nil, such as "nil *policy.Engine".
func Name(v any) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprintf("nil %T", v)
}
