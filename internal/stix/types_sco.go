package stix

import "strings"

// scoSpecs returns the 18 STIX Cyber-observable Objects of §6 with their
// predefined extensions.
func scoSpecs() map[string]*typeSpec {
	sco := func(s *objSpec, exts map[string]*objSpec) *typeSpec {
		return &typeSpec{class: classSCO, obj: s, exts: exts}
	}
	return map[string]*typeSpec{
		"artifact": sco(spec("6.1.1",
			pStr("mime_type"), pBin("payload_bin"), pStr("url"), pHashes("hashes"),
			pEnum("encryption_algorithm", encryptionAlgorithmEnum), pStr("decryption_key"),
		).with(checkArtifact), nil),
		"autonomous-system": sco(spec("6.2.1", pInt("number").req(), pStr("name"), pStr("rir")), nil),
		"directory": sco(spec("6.3.1",
			pStr("path").req(), pStr("path_enc"), pTime("ctime"), pTime("mtime"), pTime("atime"),
			pRefs("contains_refs", "file", "directory"),
		), nil),
		"domain-name": sco(spec("6.4.1",
			pStr("value").req(), pRefs("resolves_to_refs", "ipv4-addr", "ipv6-addr", "domain-name"),
		), nil),
		"email-addr": sco(spec("6.5.1",
			pStr("value").req(), pStr("display_name"), pRef("belongs_to_ref", "user-account"),
		).with(checkEmailAddr), nil),
		"email-message": sco(spec("6.6.1",
			pBool("is_multipart").req(), pTime("date"), pStr("content_type"),
			pRef("from_ref", "email-addr"), pRef("sender_ref", "email-addr"), pRefs("to_refs", "email-addr"),
			pRefs("cc_refs", "email-addr"), pRefs("bcc_refs", "email-addr"), pStr("message_id"), pStr("subject"),
			pStrs("received_lines"), pDictOf("additional_header_fields", stringListValue), pStr("body"),
			pObjs("body_multipart", mimePartSpec), pRef("raw_email_ref", "artifact"),
		).with(checkEmailMessage), nil),
		"file": sco(spec("6.7.1",
			pHashes("hashes"), pNonNeg("size"), pStr("name"), pStr("name_enc"), pHex("magic_number_hex"),
			pStr("mime_type"), pTime("ctime"), pTime("mtime"), pTime("atime"),
			pRef("parent_directory_ref", "directory"), pRefs("contains_refs"), pRef("content_ref", "artifact"),
		).with(func(c *checker, path string, m map[string]any) {
			if !hasAny(m, "hashes", "name") {
				c.add(path, "6.7", "a file must have at least one of hashes and name")
			}
		}), map[string]*objSpec{
			"archive-ext": spec("6.7.2", pRefs("contains_refs", "file", "directory").req(), pStr("comment")),
			"ntfs-ext": spec("6.7.3", pStr("sid"), pObjs("alternate_data_streams", spec("6.7.3",
				pStr("name").req(), pHashes("hashes"), pNonNeg("size")))).oneOrMore(),
			"pdf-ext": spec("6.7.4",
				pStr("version"), pBool("is_optimized"), pDictOf("document_info_dict", stringValue),
				pStr("pdfid0"), pStr("pdfid1"),
			).oneOrMore(),
			"raster-image-ext": spec("6.7.5",
				pInt("image_height"), pInt("image_width"), pInt("bits_per_pixel"), pDictOf("exif_tags", intOrStringValue),
			).oneOrMore(),
			"windows-pebinary-ext": peBinarySpec,
		}),
		"ipv4-addr": sco(spec("6.8.1",
			pStr("value").req(), pRefs("resolves_to_refs", "mac-addr"), pRefs("belongs_to_refs", "autonomous-system"),
		).with(func(c *checker, path string, m map[string]any) {
			if s, ok := m["value"].(string); ok && !isDefanged(m) && !validIPv4(s) {
				c.add(pathKey(path, "value"), "6.8.1", "%q is not an IPv4 address or CIDR block", s)
			}
		}), nil),
		"ipv6-addr": sco(spec("6.9.1",
			pStr("value").req(), pRefs("resolves_to_refs", "mac-addr"), pRefs("belongs_to_refs", "autonomous-system"),
		).with(func(c *checker, path string, m map[string]any) {
			if s, ok := m["value"].(string); ok && !isDefanged(m) && !validIPv6(s) {
				c.add(pathKey(path, "value"), "6.9.1", "%q is not an IPv6 address or CIDR block", s)
			}
		}), nil),
		"mac-addr": sco(spec("6.10.1", pStr("value").req()).with(func(c *checker, path string, m map[string]any) {
			if s, ok := m["value"].(string); ok && !isDefanged(m) && !macRe.MatchString(s) {
				c.add(pathKey(path, "value"), "6.10.1", "%q must be a colon-delimited, lowercase MAC-48 address with leading zeros (e.g. 00:00:ab:cd:ef:01)", s)
			}
		}), nil),
		"mutex": sco(spec("6.11.1", pStr("name").req()), nil),
		"network-traffic": sco(spec("6.12.1",
			pTime("start"), pTime("end"), pBool("is_active"),
			pRef("src_ref", "ipv4-addr", "ipv6-addr", "mac-addr", "domain-name"),
			pRef("dst_ref", "ipv4-addr", "ipv6-addr", "mac-addr", "domain-name"),
			pIntRange("src_port", 0, 65535), pIntRange("dst_port", 0, 65535), pStrs("protocols").req(),
			pInt("src_byte_count"), pInt("dst_byte_count"), pInt("src_packets"), pInt("dst_packets"),
			pDictOf("ipfix", intOrStringValue), pRef("src_payload_ref", "artifact"), pRef("dst_payload_ref", "artifact"),
			pRefs("encapsulates_refs", "network-traffic"), pRef("encapsulated_by_ref", "network-traffic"),
		).with(checkNetworkTraffic), map[string]*objSpec{
			"http-request-ext": spec("6.12.2",
				pStr("request_method").req(), pStr("request_value").req(), pStr("request_version"),
				pDictOf("request_header", stringListValue), pInt("message_body_length"),
				pRef("message_body_data_ref", "artifact"),
			),
			"icmp-ext": spec("6.12.3", pHex("icmp_type_hex").req(), pHex("icmp_code_hex").req()),
			"socket-ext": spec("6.12.4",
				pEnum("address_family", socketAddressFamilyEnum).req(), pBool("is_blocking"), pBool("is_listening"),
				pDictOf("options", intValue), pEnum("socket_type", socketTypeEnum), pInt("socket_descriptor"),
				pInt("socket_handle"),
			),
			"tcp-ext": spec("6.12.5", pHex("src_flags_hex"), pHex("dst_flags_hex")).oneOrMore(),
		}),
		"process": sco(processSpec, map[string]*objSpec{
			"windows-process-ext": spec("6.13.2",
				pBool("aslr_enabled"), pBool("dep_enabled"), pStr("priority"), pStr("owner_sid"),
				pStr("window_title"), pStr("windows_title"), pDict("startup_info"),
				pEnum("integrity_level", integrityLevelEnum),
			).oneOrMore(),
			"windows-service-ext": spec("6.13.3",
				pStr("service_name"), pStrs("descriptions"), pStr("display_name"), pStr("group_name"),
				pEnum("start_type", serviceStartTypeEnum), pRefs("service_dll_refs", "file"),
				pEnum("service_type", serviceTypeEnum), pEnum("service_status", serviceStatusEnum),
			).oneOrMore(),
		}),
		"software": sco(spec("6.14.1",
			pStr("name").req(), pStr("cpe"), pStr("swid"), pLangs("languages"), pStr("vendor"), pStr("version"),
		).with(func(c *checker, path string, m map[string]any) {
			if s, ok := m["cpe"].(string); ok && !strings.HasPrefix(s, "cpe:2.3:") {
				c.add(pathKey(path, "cpe"), "6.14.1", "cpe must be a CPE v2.3 entry (cpe:2.3:...)")
			}
		}), nil),
		"url": sco(spec("6.15.1", pStr("value").req()).with(func(c *checker, path string, m map[string]any) {
			if s, ok := m["value"].(string); ok && !isDefanged(m) && !validURL(s) {
				c.add(pathKey(path, "value"), "6.15.1", "%q is not an RFC 3986 URL (scheme:...)", s)
			}
		}), nil),
		"user-account": sco(userAccountSpec, map[string]*objSpec{
			"unix-account-ext": spec("6.16.2", pInt("gid"), pStrs("groups"), pStr("home_dir"), pStr("shell")).oneOrMore(),
		}),
		"windows-registry-key": sco(spec("6.17.1",
			pStr("key"), pObjs("values", spec("6.17.2",
				pStr("name"), pStr("data"), pEnum("data_type", registryDatatypeEnum)).oneOrMore()),
			pTime("modified_time"), pRef("creator_user_ref", "user-account"), pInt("number_of_subkeys"),
		).oneOrMore().with(checkRegistryKey), nil),
		"x509-certificate": sco(spec("6.18.1",
			pBool("is_self_signed"), pHashes("hashes"), pStr("version"), pStr("serial_number"),
			pStr("signature_algorithm"), pStr("issuer"), pTime("validity_not_before"), pTime("validity_not_after"),
			pStr("subject"), pStr("subject_public_key_algorithm"), pStr("subject_public_key_modulus"),
			pInt("subject_public_key_exponent"), pObj("x509_v3_extensions", x509V3Spec),
		).oneOrMore(), nil),
	}
}

var mimePartSpec = spec("6.6.2",
	pStr("body"), pRef("body_raw_ref", "artifact", "file"), pStr("content_type"), pStr("content_disposition"),
).with(func(c *checker, path string, m map[string]any) {
	if !hasAny(m, "body", "body_raw_ref") {
		c.add(path, "6.6.2", "a MIME part must have one of body and body_raw_ref")
	}
})

var peBinarySpec = spec("6.7.6",
	pStr("pe_type").req(), pStr("imphash"), pHex("machine_hex"), pNonNeg("number_of_sections"),
	pTime("time_date_stamp"), pHex("pointer_to_symbol_table_hex"), pNonNeg("number_of_symbols"),
	pNonNeg("size_of_optional_header"), pHex("characteristics_hex"), pHashes("file_header_hashes"),
	pObj("optional_header", spec("6.7.6",
		pHex("magic_hex"), pInt("major_linker_version"), pInt("minor_linker_version"),
		pNonNeg("size_of_code"), pNonNeg("size_of_initialized_data"), pNonNeg("size_of_uninitialized_data"),
		pInt("address_of_entry_point"), pInt("base_of_code"), pInt("base_of_data"), pInt("image_base"),
		pInt("section_alignment"), pInt("file_alignment"), pInt("major_os_version"), pInt("minor_os_version"),
		pInt("major_image_version"), pInt("minor_image_version"), pInt("major_subsystem_version"),
		pInt("minor_subsystem_version"), pHex("win32_version_value_hex"), pNonNeg("size_of_image"),
		pNonNeg("size_of_headers"), pHex("checksum_hex"), pHex("subsystem_hex"), pHex("dll_characteristics_hex"),
		pNonNeg("size_of_stack_reserve"), pNonNeg("size_of_stack_commit"), pNonNeg("size_of_heap_reserve"),
		pNonNeg("size_of_heap_commit"), pHex("loader_flags_hex"), pInt("number_of_rva_and_sizes"), pHashes("hashes"),
	).oneOrMore()),
	pObjs("sections", spec("6.7.6", pStr("name").req(), pNonNeg("size"), pFloat("entropy"), pHashes("hashes"))),
).with(func(c *checker, path string, m map[string]any) {
	if len(m) == 1 && has(m, "pe_type") {
		c.add(path, "6.7.6", "windows-pebinary-ext must have at least one property besides pe_type")
	}
})

var processSpec = spec("6.13.1",
	pBool("is_hidden"), pInt("pid"), pTime("created_time"), pStr("cwd"), pStr("command_line"),
	pDictOf("environment_variables", stringValue), pRefs("opened_connection_refs", "network-traffic"),
	pRef("creator_user_ref", "user-account"), pRef("image_ref", "file"), pRef("parent_ref", "process"),
	pRefs("child_refs", "process"),
).with(func(c *checker, path string, m map[string]any) {
	if !hasAny(m, "extensions") && !hasAny(m, processSpecNames...) {
		c.add(path, "6.13", "a process must have at least one property (other than type) of its own or of an extension")
	}
})

var userAccountSpec = spec("6.16.1",
	pStr("user_id"), pStr("credential"), pStr("account_login"), pStr("account_type"), pStr("display_name"),
	pBool("is_service_account"), pBool("is_privileged"), pBool("can_escalate_privs"), pBool("is_disabled"),
	pTime("account_created"), pTime("account_expires"), pTime("credential_last_changed"),
	pTime("account_first_login"), pTime("account_last_login"),
).with(func(c *checker, path string, m map[string]any) {
	if !hasAny(m, "extensions") && !hasAny(m, userAccountSpecNames...) {
		c.add(path, "6.16", "a user account must have at least one of its properties or an extension")
	}
})

var (
	processSpecNames = []string{"is_hidden", "pid", "created_time", "cwd", "command_line", "environment_variables",
		"opened_connection_refs", "creator_user_ref", "image_ref", "parent_ref", "child_refs"}
	userAccountSpecNames = []string{"user_id", "credential", "account_login", "account_type", "display_name",
		"is_service_account", "is_privileged", "can_escalate_privs", "is_disabled", "account_created",
		"account_expires", "credential_last_changed", "account_first_login", "account_last_login"}
)

var x509V3Spec = spec("6.18.2",
	pStr("basic_constraints"), pStr("name_constraints"), pStr("policy_constraints"), pStr("key_usage"),
	pStr("extended_key_usage"), pStr("subject_key_identifier"), pStr("authority_key_identifier"),
	pStr("subject_alternative_name"), pStr("issuer_alternative_name"), pStr("subject_directory_attributes"),
	pStr("crl_distribution_points"), pStr("inhibit_any_policy"), pTime("private_key_usage_period_not_before"),
	pTime("private_key_usage_period_not_after"), pStr("certificate_policies"), pStr("policy_mappings"),
).oneOrMore()

func isDefanged(m map[string]any) bool {
	d, _ := m["defanged"].(bool)
	return d
}

func checkArtifact(c *checker, path string, m map[string]any) {
	const sec = "6.1"
	_, bin := m["payload_bin"]
	_, u := m["url"]
	switch {
	case bin && u:
		c.add(path, sec, "payload_bin and url must not both be present")
	case !bin && !u:
		c.add(path, sec, "one of payload_bin and url must be present")
	}
	if u && !has(m, "hashes") {
		c.add(path, "6.1.1", "hashes must be present when url is present")
	}
	if has(m, "decryption_key") && !has(m, "encryption_algorithm") {
		c.add(pathKey(path, "decryption_key"), "6.1.1", "decryption_key must not be present without encryption_algorithm")
	}
}

func checkEmailAddr(c *checker, path string, m map[string]any) {
	s, ok := m["value"].(string)
	if !ok || isDefanged(m) {
		return
	}
	// §6.5.1: an RFC 5322 addr-spec, without the display name.
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(s, "<> \t\r\n") {
		c.add(pathKey(path, "value"), "6.5.1", "%q must be a bare email address (addr-spec) without a display name", s)
	}
}

func checkEmailMessage(c *checker, path string, m map[string]any) {
	mp, ok := m["is_multipart"].(bool)
	if !ok {
		return
	}
	if mp && has(m, "body") {
		c.add(pathKey(path, "body"), "6.6.1", "body must not be used when is_multipart is true")
	}
	if !mp && has(m, "body_multipart") {
		c.add(pathKey(path, "body_multipart"), "6.6.1", "body_multipart must not be used when is_multipart is false")
	}
}

func checkNetworkTraffic(c *checker, path string, m map[string]any) {
	if !hasAny(m, "src_ref", "dst_ref") {
		c.add(path, "6.12", "a network-traffic object must have at least one of src_ref and dst_ref")
	}
	c.ordered(path, m, "start", "end", "6.12.1", false)
	if active, _ := m["is_active"].(bool); active && has(m, "end") {
		c.add(pathKey(path, "end"), "6.12.1", "end must not be present when is_active is true")
	}
}

// registryHiveAbbrevs are abbreviated hive names; §6.17.1 requires the hive
// to be fully expanded (HKEY_LOCAL_MACHINE, not HKLM).
var registryHiveAbbrevs = []string{"hklm", "hkcu", "hkcr", "hku", "hkcc", "hkpd"}

func checkRegistryKey(c *checker, path string, m map[string]any) {
	s, ok := m["key"].(string)
	if !ok {
		return
	}
	hive, _, _ := strings.Cut(s, `\`)
	for _, a := range registryHiveAbbrevs {
		if strings.EqualFold(hive, a) {
			c.add(pathKey(path, "key"), "6.17.1", "the hive of key must be fully expanded (e.g. HKEY_LOCAL_MACHINE, not HKLM)")
			return
		}
	}
}

func stringValue(c *checker, path string, v any, sec string) { c.str(path, v, sec) }

func intValue(c *checker, path string, v any, sec string) { c.integer(path, v, sec, -maxInt, maxInt) }

func intOrStringValue(c *checker, path string, v any, sec string) {
	if _, ok := v.(string); ok {
		return
	}
	c.integer(path, v, sec, -maxInt, maxInt)
}

func stringListValue(c *checker, path string, v any, sec string) { c.stringList(path, v, sec) }
