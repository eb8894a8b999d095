// Certificates for the TLS tests, valid from 2000 to 2099: a test CA, a
// server certificate it signed for the name "clca.test" only (so connecting
// to 127.0.0.1 needs a target name override), a client certificate it
// signed, and another CA that signed neither. EC P-256 keys, made with
// `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1` and
// signed with `openssl ca -startdate 20000101000000Z -enddate
// 20991231000000Z` (with -selfsign for the CAs); the server's extensions are
// subjectAltName=DNS:clca.test and extendedKeyUsage=serverAuth, the
// client's extendedKeyUsage=clientAuth.
#pragma once

namespace clca::testing {

inline constexpr char kTestCaPem[] = R"pem(
-----BEGIN CERTIFICATE-----
MIIBYjCCAQigAwIBAgICEAAwCgYIKoZIzj0EAwIwFzEVMBMGA1UEAwwMY2xjYSB0
ZXN0IENBMCAXDTAwMDEwMTAwMDAwMFoYDzIwOTkxMjMxMDAwMDAwWjAXMRUwEwYD
VQQDDAxjbGNhIHRlc3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARFSyjL
B5m6uubYYZ1rLGCzQBqa2j4UFeY+imrsJWJmPhQsSKXIA18wP26+TS9KeUFdQ2Nd
+VSzbtf0IO8MrefKo0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIB
BjAdBgNVHQ4EFgQUhE3wxfowdPMc2jyufdO8uw2FCYwwCgYIKoZIzj0EAwIDSAAw
RQIgVRPmG9+F2hn7a1qOuoeYi3lC8Zk9HFx7ixZKMm6mqeYCIQCol8if6DhqLcE5
PLFLovcVDxRTNnXE7HM3QLm3JhJIZg==
-----END CERTIFICATE-----
)pem";

inline constexpr char kOtherCaPem[] = R"pem(
-----BEGIN CERTIFICATE-----
MIIBZDCCAQqgAwIBAgICEAEwCgYIKoZIzj0EAwIwGDEWMBQGA1UEAwwNY2xjYSBv
dGhlciBDQTAgFw0wMDAxMDEwMDAwMDBaGA8yMDk5MTIzMTAwMDAwMFowGDEWMBQG
A1UEAwwNY2xjYSBvdGhlciBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABEPu
HL7vKfMNJrcTh5EiQEZy2Yhyh0ZwmflMUWQfJNwd8aj/XNWdFYqX2Dj7o/SYt6qz
S/+RBK6tDlpDSCsJSm6jQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQD
AgEGMB0GA1UdDgQWBBTSYGZSx+3ajz5luRYpz9lvR93rsTAKBggqhkjOPQQDAgNI
ADBFAiAUe0RAvbeLJq9ZBubNG8JSyc9uIW4COhoP35QcF1Rw0AIhANtHTqrVYCgT
cHNBG76KE4McCXYeYF52o7qi12OKGrnY
-----END CERTIFICATE-----
)pem";

inline constexpr char kServerCertPem[] = R"pem(
-----BEGIN CERTIFICATE-----
MIIBizCCATCgAwIBAgICEAIwCgYIKoZIzj0EAwIwFzEVMBMGA1UEAwwMY2xjYSB0
ZXN0IENBMCAXDTAwMDEwMTAwMDAwMFoYDzIwOTkxMjMxMDAwMDAwWjAUMRIwEAYD
VQQDDAljbGNhLnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQ+V3ghjlRA
4sjco+FaOB6eEJPAIJenF1Z/IYt2wtJrFqnjLotNhQoPtX/b4ChGbuimQ2ziZEDL
guh/gIUewOF1o20wazAUBgNVHREEDTALggljbGNhLnRlc3QwEwYDVR0lBAwwCgYI
KwYBBQUHAwEwHQYDVR0OBBYEFIFDZdeKct3uPiYbxSt6VzmEZelUMB8GA1UdIwQY
MBaAFIRN8MX6MHTzHNo8rn3TvLsNhQmMMAoGCCqGSM49BAMCA0kAMEYCIQDfM5SU
b4j1i/3RHiV8tqbOwk5mP09GqHeaTDarAhTafgIhAITZs6IuWcSNOg/cIOgiMe73
C8jE+hFC7SAz1JRWQvnJ
-----END CERTIFICATE-----
)pem";

inline constexpr char kServerKeyPem[] = R"pem(
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgorttFPn4VGjvx0Nj
6kR5vYcBz9dR/M+0sWM6wqzXDbChRANCAAQ+V3ghjlRA4sjco+FaOB6eEJPAIJen
F1Z/IYt2wtJrFqnjLotNhQoPtX/b4ChGbuimQ2ziZEDLguh/gIUewOF1
-----END PRIVATE KEY-----
)pem";

inline constexpr char kClientCertPem[] = R"pem(
-----BEGIN CERTIFICATE-----
MIIBezCCASGgAwIBAgICEAMwCgYIKoZIzj0EAwIwFzEVMBMGA1UEAwwMY2xjYSB0
ZXN0IENBMCAXDTAwMDEwMTAwMDAwMFoYDzIwOTkxMjMxMDAwMDAwWjAbMRkwFwYD
VQQDDBBjbGNhIHRlc3QgY2xpZW50MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
MrxAZLqAM2MkrufrXadLKD+4jyMVX/zF4Je/KlL0Rcx9U4xjOpA8d8Rh339b3MDD
RE0eYXr40+L0YLyLiPbxVKNXMFUwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0O
BBYEFHEA+Hpi1Az2hKdBjhOwmvZk/3wRMB8GA1UdIwQYMBaAFIRN8MX6MHTzHNo8
rn3TvLsNhQmMMAoGCCqGSM49BAMCA0gAMEUCIQDF0iJz7OWLmFHq9f5RjHmfV4Ow
vZ6F+GbgodErCUpsiAIgLNrHvkk8i8cJeqtGHkhQWZLxQfiLA6knn9JQT8X9j/g=
-----END CERTIFICATE-----
)pem";

inline constexpr char kClientKeyPem[] = R"pem(
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNLBOI/rzQfZ3WhES
ly0jqb91HLDGzOlHJop5uzTCemShRANCAAQyvEBkuoAzYySu5+tdp0soP7iPIxVf
/MXgl78qUvRFzH1TjGM6kDx3xGHff1vcwMNETR5hevjT4vRgvIuI9vFU
-----END PRIVATE KEY-----
)pem";

}  // namespace clca::testing
