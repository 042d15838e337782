package devices

// Device is one sensor as the operator registered it.
type Device struct {
	EUI   EUI    `yaml:"dev_eui" json:"dev_eui"`
	Name  string `yaml:"name" json:"name"` // operator's unique name, written as the device tag
	Model string `yaml:"model" json:"model,omitempty"`
	// Tags are written on every point of the device when the config allows
	// the key (devices.tags), so cardinality stays under the operator's control.
	Tags map[string]string `yaml:"tags" json:"tags,omitempty"`
	// Variables are handed to the decoder (ChirpStack device variables).
	Variables map[string]string `yaml:"variables" json:"variables,omitempty"`
	// Session is the LoRaWAN ABP session, for feeds of raw frames; nil for
	// devices only heard through a network server.
	Session *Session `yaml:"session,omitempty" json:"session,omitempty"`
}
