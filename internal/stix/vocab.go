package stix

// Closed enumerations of STIX 2.1 §10. Values outside an enumeration MUST NOT
// be used (§2.4); open vocabularies (-ov) accept any string (§2.14) and are
// therefore not listed here. These sets are built once and only read.
type enumSet struct {
	name    string // e.g. "opinion-enum"
	section string // e.g. "10.18"
	values  map[string]struct{}
}

func newEnum(name, section string, values ...string) *enumSet {
	e := &enumSet{name: name, section: section, values: make(map[string]struct{}, len(values))}
	for _, v := range values {
		e.values[v] = struct{}{}
	}
	return e
}

func (e *enumSet) has(v string) bool {
	_, ok := e.values[v]
	return ok
}

var (
	encryptionAlgorithmEnum = newEnum("encryption-algorithm-enum", "10.4",
		"AES-256-GCM", "ChaCha20-Poly1305", "mime-type-indicated")
	extensionTypeEnum = newEnum("extension-type-enum", "10.5",
		"new-sdo", "new-sco", "new-sro", "property-extension", "toplevel-property-extension")
	socketAddressFamilyEnum = newEnum("network-socket-address-family-enum", "10.16",
		"AF_UNSPEC", "AF_INET", "AF_IPX", "AF_APPLETALK", "AF_NETBIOS", "AF_INET6", "AF_IRDA", "AF_BTH")
	socketTypeEnum = newEnum("network-socket-type-enum", "10.17",
		"SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_RDM", "SOCK_SEQPACKET")
	opinionEnum = newEnum("opinion-enum", "10.18",
		"strongly-disagree", "disagree", "neutral", "agree", "strongly-agree")
	integrityLevelEnum = newEnum("windows-integrity-level-enum", "10.27",
		"low", "medium", "high", "system")
	registryDatatypeEnum = newEnum("windows-registry-datatype-enum", "10.29",
		"REG_NONE", "REG_SZ", "REG_EXPAND_SZ", "REG_BINARY", "REG_DWORD", "REG_DWORD_BIG_ENDIAN",
		"REG_DWORD_LITTLE_ENDIAN", "REG_LINK", "REG_MULTI_SZ", "REG_RESOURCE_LIST",
		"REG_FULL_RESOURCE_DESCRIPTION", "REG_RESOURCE_REQUIREMENTS_LIST", "REG_QWORD", "REG_INVALID_TYPE")
	serviceStartTypeEnum = newEnum("windows-service-start-type-enum", "10.30",
		"SERVICE_AUTO_START", "SERVICE_BOOT_START", "SERVICE_DEMAND_START", "SERVICE_DISABLED", "SERVICE_SYSTEM_ALERT")
	serviceTypeEnum = newEnum("windows-service-type-enum", "10.31",
		"SERVICE_KERNEL_DRIVER", "SERVICE_FILE_SYSTEM_DRIVER", "SERVICE_WIN32_OWN_PROCESS", "SERVICE_WIN32_SHARE_PROCESS")
	serviceStatusEnum = newEnum("windows-service-status-enum", "10.32",
		"SERVICE_CONTINUE_PENDING", "SERVICE_PAUSE_PENDING", "SERVICE_PAUSED", "SERVICE_RUNNING",
		"SERVICE_START_PENDING", "SERVICE_STOP_PENDING", "SERVICE_STOPPED")
)

// tlpMarkings are the only TLP marking definitions STIX 2.1 permits
// (§7.2.1.4: "Other instances of tlp-marking MUST NOT be used or created"),
// by id, with their level.
var tlpMarkings = map[string]string{
	"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "white",
	"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
	"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
	"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
}

// reservedNames MUST NOT be used as property names (§3.8).
var reservedNames = map[string]struct{}{
	"severity": {}, "username": {}, "phone_number": {}, "action": {},
}

// hashLengths gives the hex length of the hash-algorithm-ov values (§10.7)
// whose format is a fixed-size digest; §2.7 requires each value to be in the
// format of the algorithm its key names. SSDEEP and TLSH have no fixed
// hex form and are not checked.
var hashLengths = map[string]int{
	"MD5": 32, "SHA-1": 40, "SHA-256": 64, "SHA-512": 128, "SHA3-256": 64, "SHA3-512": 128,
}
