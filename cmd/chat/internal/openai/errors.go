// Package openai holds the wire format of chat serve's OpenAI-compatible
// API: request parsing and validation, response and stream chunk types, and
// the error object. It knows nothing of models, so it is tested alone.
package openai

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error types as OpenAI names them; unavailable_error is llama-server's
// for a server that is loading or full.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeNotFound       = "not_found_error"
	TypeUnavailable    = "unavailable_error"
	TypeServer         = "server_error"
)

// Error is an API error: an HTTP status and OpenAI's error object,
// {"error": {"message", "type", "param", "code"}}.
type Error struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
	// RetryAfter, in seconds, is sent as a Retry-After header when > 0.
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string { return e.Message }

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Errorf makes an error with status, type, the offending parameter ("" for
// none) and a machine-readable code ("" for none).
func Errorf(status int, typ, param, code, format string, a ...any) *Error {
	return &Error{Status: status, Type: typ, Param: strPtr(param), Code: strPtr(code), Message: fmt.Sprintf(format, a...)}
}

// Invalid is a 400 invalid_request_error about param.
func Invalid(param, code, format string, a ...any) *Error {
	return Errorf(http.StatusBadRequest, TypeInvalidRequest, param, code, format, a...)
}

// WriteError sends e as a JSON error response.
func WriteError(w http.ResponseWriter, e *Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(e.RetryAfter))
	}
	WriteJSON(w, e.Status, map[string]*Error{"error": e})
}

// WriteJSON sends v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"encoding the response failed","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
