package httpapi

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
)

// DecodeRequest is one payload to decode, as `sensorgate decode` takes it
// on its command line. Give the payload in exactly one of PayloadHex and
// PayloadBase64: the API does not guess.
type DecodeRequest struct {
	Model         string            `json:"model"`
	FPort         *int              `json:"f_port"` // default 1
	PayloadHex    string            `json:"payload_hex"`
	PayloadBase64 string            `json:"payload_base64"`
	Time          *time.Time        `json:"time"` // default now
	Variables     map[string]string `json:"variables"`
}

// DecodeResult is what a decode test returns, field for field what
// `sensorgate decode` prints: the decoder's data, the samples it maps onto
// the catalogue, and warnings.
type DecodeResult struct {
	Model    string         `json:"model"`
	FPort    uint8          `json:"fport"`
	Data     map[string]any `json:"data"`
	Samples  []DecodeSample `json:"samples"`
	Warnings []string       `json:"warnings"`
}

// DecodeSample is one catalogue sample with where it is written.
type DecodeSample = decoders.ReportSample

// Decode runs one payload through dec and checks the samples against the
// catalogue, as the pipeline does before writing: decoders.Explain, which
// `sensorgate decode` prints too.
func Decode(dec decoders.Decoder, model string, in decoders.Input) (DecodeResult, error) {
	rep, err := decoders.Explain(dec, in)
	if err != nil {
		return DecodeResult{}, fmt.Errorf("model %s: %w", model, err)
	}
	return DecodeResult{Model: model, FPort: in.FPort, Data: rep.Data, Samples: rep.Samples, Warnings: rep.Warnings}, nil
}

func (s *Server) decode(w http.ResponseWriter, r *http.Request) {
	if s.opt.Decoders == nil {
		unavailable(w, "the decoder registry")
		return
	}
	var req DecodeRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	in := decoders.Input{FPort: 1, Time: s.opt.Now().UTC(), Variables: req.Variables}
	var problems []string
	if req.Model == "" {
		problems = append(problems, "model is missing: name a model (GET /api/v1/models)")
	}
	if req.FPort != nil {
		if *req.FPort < 0 || *req.FPort > 255 {
			problems = append(problems, fmt.Sprintf("f_port %d: an FPort is 0..255", *req.FPort))
		} else {
			in.FPort = uint8(*req.FPort)
		}
	}
	if req.Time != nil {
		in.Time = *req.Time
	}
	var err error
	switch {
	case req.PayloadHex != "" && req.PayloadBase64 != "":
		problems = append(problems, "give payload_hex or payload_base64, not both")
	case req.PayloadHex != "":
		h := strings.NewReplacer(" ", "", "0x", "", "0X", "").Replace(req.PayloadHex)
		if in.Bytes, err = hex.DecodeString(h); err != nil {
			problems = append(problems, fmt.Sprintf("payload_hex is not hex: %v", err))
		}
	case req.PayloadBase64 != "":
		if in.Bytes, err = base64.StdEncoding.DecodeString(req.PayloadBase64); err != nil {
			problems = append(problems, fmt.Sprintf("payload_base64 is not base64: %v", err))
		}
	default:
		problems = append(problems, "payload is missing: give payload_hex or payload_base64")
	}
	if len(problems) > 0 {
		writeError(w, http.StatusBadRequest, strings.Join(problems, "; "), problems)
		return
	}
	dec, ok := s.opt.Decoders.Lookup(req.Model)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no decoder for model %q: see GET /api/v1/models, or add a codec to decoders.scripts", req.Model), nil)
		return
	}
	out, err := Decode(dec, req.Model, in)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "the decoder rejected the payload: "+err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
