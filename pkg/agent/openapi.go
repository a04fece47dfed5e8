package agent

import (
	_ "embed"
	"net/http"
)

// openAPI is the admin API described as an OpenAPI 3 document, served at
// GET /v1/openapi.json. It is written by hand; a test checks that it names
// exactly the routes the API serves and the fields of its documents.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the admin API's OpenAPI 3 document (JSON).
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

func getOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
