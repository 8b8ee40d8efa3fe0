package token

import "encoding/base64"

// base64RawURL is the lax decoder (no Strict), to build non-canonical inputs.
var base64RawURL = base64.RawURLEncoding
