package federation

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeyEnv is the environment variable holding the peer secrets key
// (base64 of 32 random bytes).
const KeyEnv = "MITRA_PEER_KEY"

// ErrNoKey: the peer secrets key is not configured, so sealed peer
// credentials cannot be read or written.
var ErrNoKey = errors.New("no peer secrets key: set " + KeyEnv + " or --peer-key-file (base64 of 32 random bytes, e.g. `head -c32 /dev/urandom | base64`)")

// Credentials are a peer's secrets, kept sealed in the store.
type Credentials struct {
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
	// ClientKey is the PEM private key of the peer's client certificate.
	ClientKey string `json:"client_key,omitempty"`
}

// Sealer encrypts peer credentials at rest with XChaCha20-Poly1305
// (golang.org/x/crypto), the peer's name as associated data so that a
// sealed secret moved to another peer's row does not open.
type Sealer struct {
	key []byte
}

// NewSealer returns a Sealer with a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("peer secrets key: %d bytes, want %d", len(key), chacha20poly1305.KeySize)
	}
	return &Sealer{key: bytes.Clone(key)}, nil
}

// LoadSealer reads the key from file when given, else from the
// environment value env (KeyEnv's); ErrNoKey when neither is set. Both
// hold the key in base64.
func LoadSealer(file, env string) (*Sealer, error) {
	text := env
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("peer key file: %w", err)
		}
		text = string(b)
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, ErrNoKey
	}
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("peer secrets key: not base64: %w", err)
	}
	return NewSealer(key)
}

const sealVersion = 1

// Seal encrypts c for the peer named name.
func (s *Sealer) Seal(name string, c Credentials) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(s.key)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plain)+aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:], plain, []byte("mitra peer "+name)), nil
}

// Open decrypts what Seal sealed for the peer named name.
func (s *Sealer) Open(name string, sealed []byte) (Credentials, error) {
	var c Credentials
	if len(sealed) == 0 {
		return c, nil
	}
	aead, err := chacha20poly1305.NewX(s.key)
	if err != nil {
		return c, err
	}
	if sealed[0] != sealVersion || len(sealed) < 1+aead.NonceSize()+aead.Overhead() {
		return c, fmt.Errorf("peer %s: sealed credentials in an unknown format", name)
	}
	n := 1 + aead.NonceSize()
	plain, err := aead.Open(nil, sealed[1:n], sealed[n:], []byte("mitra peer "+name))
	if err != nil {
		return c, fmt.Errorf("peer %s: credentials do not open with this key (another key, or tampered): %w", name, err)
	}
	if err := json.Unmarshal(plain, &c); err != nil {
		return c, fmt.Errorf("peer %s: credentials: %w", name, err)
	}
	return c, nil
}
