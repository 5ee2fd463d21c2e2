module github.com/authstream/authstream/tools/bench

go 1.26.0

require (
	github.com/authstream/authstream/libs/authn v0.0.0
	github.com/authstream/authstream/libs/authz v0.0.0
	github.com/authstream/authstream/libs/config v0.0.0
	github.com/authstream/authstream/libs/events v0.0.0
	github.com/authstream/authstream/libs/eventstore v0.0.0
	github.com/authstream/authstream/libs/keystore v0.0.0
	github.com/authstream/authstream/libs/readmodel v0.0.0
	github.com/authstream/authstream/services/authstream v0.0.0
	github.com/emersion/go-smtp v0.26.0
	github.com/jackc/pgx/v5 v5.12.0
	github.com/nats-io/nats-server/v2 v2.15.2
	github.com/nats-io/nats.go v1.55.0
	github.com/synadia-io/orbit.go/jetstreamext v0.3.2
	golang.org/x/crypto v0.59.0
)

require (
	github.com/antithesishq/antithesis-sdk-go v0.8.0-default-no-op // indirect
	github.com/authstream/authstream/libs/auditlog v0.0.0 // indirect
	github.com/authstream/authstream/libs/fault v0.0.0 // indirect
	github.com/authstream/authstream/libs/httpserver v0.0.0 // indirect
	github.com/authstream/authstream/libs/service v0.0.0 // indirect
	github.com/authstream/authstream/libs/telemetry v0.0.0 // indirect
	github.com/authstream/authstream/services/command v0.0.0 // indirect
	github.com/authstream/authstream/services/dispatcher v0.0.0 // indirect
	github.com/authstream/authstream/services/projector v0.0.0 // indirect
	github.com/authstream/authstream/services/query v0.0.0 // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/bmatcuk/doublestar/v4 v4.10.4 // indirect
	github.com/boombuler/barcode v1.0.1-0.20190219062509-6c824513bacc // indirect
	github.com/cenkalti/backoff/v5 v5.0.3 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/coreos/go-oidc/v3 v3.21.0 // indirect
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6 // indirect
	github.com/fxamacker/cbor/v2 v2.9.4 // indirect
	github.com/go-chi/chi/v5 v5.5.0 // indirect
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/go-viper/mapstructure/v2 v2.5.0 // indirect
	github.com/go-webauthn/webauthn v0.18.2 // indirect
	github.com/go-webauthn/x v0.3.1 // indirect
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/gorilla/securecookie v1.1.2 // indirect
	github.com/grpc-ecosystem/grpc-gateway/v2 v2.30.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/muhlemmer/gu v0.3.1 // indirect
	github.com/muhlemmer/httpforwarded v0.1.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/nats-io/jwt/v2 v2.8.2 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/philhofer/fwd v1.2.0 // indirect
	github.com/pquerna/otp v1.5.0 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/otlptranslator v1.0.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/rs/cors v1.11.1 // indirect
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3 // indirect
	github.com/synadia-io/orbit.go/natsext v0.1.3 // indirect
	github.com/tinylib/msgp v1.6.4 // indirect
	github.com/wneessen/go-mail v0.8.1 // indirect
	github.com/x448/float16 v0.8.4 // indirect
	github.com/zitadel/oidc/v3 v3.52.0 // indirect
	github.com/zitadel/schema v1.3.2 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/exporters/otlp/otlptrace v1.47.0 // indirect
	go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp v1.47.0 // indirect
	go.opentelemetry.io/otel/exporters/prometheus v0.69.0 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/sdk v1.47.0 // indirect
	go.opentelemetry.io/otel/sdk/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	go.opentelemetry.io/proto/otlp v1.11.0 // indirect
	golang.org/x/mod v0.43.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/oauth2 v0.38.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	golang.org/x/time v0.16.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20260928230214-8a89bd6388cc // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260928230214-8a89bd6388cc // indirect
	google.golang.org/grpc v1.83.2 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/authstream/authstream/libs/authn => ../../libs/authn

replace github.com/authstream/authstream/libs/authz => ../../libs/authz

replace github.com/authstream/authstream/libs/config => ../../libs/config

replace github.com/authstream/authstream/libs/events => ../../libs/events

replace github.com/authstream/authstream/libs/eventstore => ../../libs/eventstore

replace github.com/authstream/authstream/libs/fault => ../../libs/fault

replace github.com/authstream/authstream/libs/httpserver => ../../libs/httpserver

replace github.com/authstream/authstream/libs/keystore => ../../libs/keystore

replace github.com/authstream/authstream/libs/readmodel => ../../libs/readmodel

replace github.com/authstream/authstream/libs/telemetry => ../../libs/telemetry

replace github.com/authstream/authstream/services/authstream => ../../services/authstream

replace github.com/authstream/authstream/services/command => ../../services/command

replace github.com/authstream/authstream/services/dispatcher => ../../services/dispatcher

replace github.com/authstream/authstream/services/projector => ../../services/projector

replace github.com/authstream/authstream/services/query => ../../services/query

replace github.com/authstream/authstream/libs/service => ../../libs/service

replace github.com/authstream/authstream/libs/auditlog => ../../libs/auditlog
