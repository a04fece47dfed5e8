package agent

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// routesOnly is an adminBackend that can only list the routes.
type routesOnly struct{ adminBackend }

func (routesOnly) gatherer() prometheus.Gatherer { return prometheus.NewRegistry() }
func (routesOnly) testFaults() faultSwitch       { return nil }

// openAPIDoc is the part of openapi.json the tests read.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	dec := json.NewDecoder(strings.NewReader(string(openAPI)))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: openapi %q, want 3.x", doc.OpenAPI)
	}
	return doc
}

// TestOpenAPIDocumentsEveryRoute checks that every route the API registers
// is in openapi.json and every operation openapi.json names is a route
// (the test-only fault routes are registered only with TestHooks.Faults;
// the dashboard's files under /ui/ are not an API route and not listed).
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	var served []string
	for _, rt := range (&apiServer{b: routesOnly{}}).routes() {
		if rt.pattern == "GET "+uiPrefix {
			continue // the dashboard's static files (ui.go): a page, not an API route
		}
		served = append(served, rt.pattern)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(served)
	sort.Strings(documented)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is served but not in openapi.json", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("openapi.json documents %s, which the API does not serve", r)
		}
	}
}

// TestOpenAPISchemasMatchTheDocuments checks that each schema of
// openapi.json has exactly the JSON fields of the Go document it stands
// for.
func TestOpenAPISchemasMatchTheDocuments(t *testing.T) {
	types := map[string]any{
		"APIError": APIError{}, "Liveness": Liveness{}, "Readiness": Readiness{}, "PeerHealth": PeerHealth{},
		"StateHealth": StateHealth{}, "RaftHealth": RaftHealth{}, "UnreachableServer": UnreachableServer{},
		"Health": Health{}, "Member": Member{}, "MemberProtocol": MemberProtocol{}, "StateInfo": StateInfo{}, "ViewEntry": ViewEntry{},
		"StateDump": StateDump{}, "StateChange": StateChange{}, "KVValue": KVValue{}, "WriteResult": WriteResult{},
		"JoinRequest": JoinRequest{}, "JoinResult": JoinResult{}, "LeaveResult": LeaveResult{},
		"RaftPeer": RaftPeer{}, "RaftStatus": RaftStatus{}, "BootstrapRequest": BootstrapRequest{},
		"BootstrapResult": BootstrapResult{}, "RemovePeerRequest": RemovePeerRequest{},
		"RemovePeerResult": RemovePeerResult{}, "ForceLeaveRequest": ForceLeaveRequest{},
		"ForceLeaveResult": ForceLeaveResult{}, "KeyringStatus": KeyringStatus{}, "KeyRequest": KeyRequest{},
		"Empty": struct{}{},
	}
	doc := loadOpenAPI(t)
	for name, schema := range doc.Components.Schemas {
		v, ok := types[name]
		if !ok {
			t.Errorf("schema %s: no Go document known for it (add it to this test)", name)
			continue
		}
		var want, got []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			if tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ","); tag != "" && tag != "-" {
				want = append(want, tag)
			}
		}
		for p := range schema.Properties {
			got = append(got, p)
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has the properties %q, want the fields of %T: %q", name, got, v, want)
		}
	}
}
