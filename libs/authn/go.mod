module github.com/authstream/authstream/libs/authn

go 1.26.0

require (
	github.com/authstream/authstream/libs/fault v0.0.0
	github.com/go-jose/go-jose/v4 v4.1.9
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/pquerna/otp v1.5.0
	golang.org/x/crypto v0.59.0
	golang.org/x/text v0.44.0
)

require (
	github.com/boombuler/barcode v1.0.1-0.20190219062509-6c824513bacc // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/authstream/authstream/libs/fault => ../fault
