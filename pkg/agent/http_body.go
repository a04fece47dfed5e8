package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
)

// decodeBody decodes the JSON request body of the operation op (e.g.
// "join") into v, a pointer to one of api.go's request documents. The body
// holds at most max_request_bytes, one JSON object with only v's fields,
// and nothing after it but white space. Errors name the operation, the
// fields and the document expected, never a Go type:
//
//	join: body: want {"addrs": [...]}: unknown field "adrs"
func (s *apiServer) decodeBody(w http.ResponseWriter, r *http.Request, op string, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.maxRequestBytes()))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// One document, then nothing but white space.
		var extra json.RawMessage
		err = dec.Decode(&extra)
		var mbe *http.MaxBytesError
		switch {
		case err == io.EOF:
			return nil
		case !errors.As(err, &mbe):
			err = errors.New("trailing data after the JSON document")
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		s.countOversizedRequest(r)
		return tooLarge{fmt.Errorf("%s: body is larger than max_request_bytes (%d bytes)", op, mbe.Limit)}
	}
	return badRequest{fmt.Errorf("%s: body: want %s: %s", op, docShape(v), describeJSONError(err))}
}

// describeJSONError words a decoding error without Go type names.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return "the body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON document is cut short"
	case errors.As(err, &te):
		if te.Field == "" {
			return fmt.Sprintf("got a JSON %s, want an object", te.Value)
		}
		return fmt.Sprintf("field %q: got a JSON %s, want %s", te.Field, te.Value, jsonKind(te.Type))
	case errors.As(err, &se):
		return fmt.Sprintf("not JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// docShape sketches the JSON object a request document is, from its json
// tags: {"node": "...", "prune": false}.
func docShape(v any) string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return jsonKind(t)
	}
	var parts []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		parts = append(parts, fmt.Sprintf("%q: %s", name, jsonSample(f.Type)))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// jsonSample is a placeholder value of t in docShape.
func jsonSample(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return `"..."`
	case reflect.Bool:
		return "false"
	case reflect.Slice, reflect.Array:
		return "[...]"
	case reflect.Map, reflect.Struct:
		return "{...}"
	case reflect.Pointer:
		return jsonSample(t.Elem())
	}
	return "0"
}

// jsonKind names the JSON value t decodes from, e.g. "an array of strings".
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		elem := strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "a "), "an ")
		if elem == "true or false" {
			elem = "boolean"
		}
		return "an array of " + elem + "s"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "an integer"
}
