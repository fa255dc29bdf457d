package detect_test

import (
	"errors"

	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

func asTAXIIError(err error, te **taxiiclient.Error) bool { return errors.As(err, te) }
