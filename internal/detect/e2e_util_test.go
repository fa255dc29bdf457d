package detect_test

import (
	"encoding/json"
	"errors"

	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

func asTAXIIError(err error, te **taxiiclient.Error) bool { return errors.As(err, te) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
