package detect_test

import (
	"errors"

	"github.com/mitra-cert/mitra/internal/taxii"
)

func asTAXIIError(err error, te **taxii.Error) bool { return errors.As(err, te) }
