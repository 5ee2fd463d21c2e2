// Package browsertest is the sign-in journey of a web application through
// a tenant's OpenID Connect provider, end to end: the all-in-one platform
// runs in the test process (authstreamtest.Start), the example relying
// party (services/examples/webapp) runs beside it, and a person signs in
// and out twice, once in headless Chromium (Debian's chromium, driven by
// chromedp) and once as a plain HTTP client that follows every redirect
// by hand and posts the hosted page's form as it is.
//
// Chromium comes from scripts/ensure-chromium, which .ci/run and
// `make test` call; without it the Chromium journey skips, and fails when
// CI is set. Its screenshots of the hosted sign-in page (320 and 1280
// pixels wide) stay in a folder of the system's temporary directory,
// named in the test's log.
//
// The package holds tests only.
package browsertest
