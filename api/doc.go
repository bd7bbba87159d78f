// Package api holds the JSON bodies and error codes of Shoal's HTTP API, shared by the router that writes them and the client that reads them.
//
// A field's JSON name, type and omitempty here are the wire: clients
// already deployed read them, so they change only with the API's version
// (golden_test.go pins them). The package imports nothing but the standard
// library and has no server logic, so a client can import it alone.
package api
