package server

import (
	"strings"
	"unicode/utf8"

	"github.com/latch-auth/latch"
)

// describeDevice names the browser and operating system of a User-Agent
// header for the account page: "Firefox on Windows", "Safari on iPhone".
// It is a small, honest parser, not a database: it knows the browsers and
// systems most people use, says "Unknown browser" for the rest, and never
// claims a version. A User-Agent is whatever the client sent, so the page
// shows it as a hint, beside the address and times, not as proof.
func describeDevice(ua string) string {
	browser, system := browserOf(ua), systemOf(ua)
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return "Unknown browser on " + system
	}
	return "Unknown browser"
}

// browserOf looks for the tokens of the browsers that other browsers do
// not also send, most specific first: Edge, Opera and Samsung Internet
// send Chrome's tokens too, Chrome sends Safari's.
func browserOf(ua string) string {
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"},
		{"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
		{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"HeadlessChrome/", "Chrome (headless)"}, {"CriOS/", "Chrome"},
		{"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
		{"curl/", "curl"}, {"Wget/", "Wget"},
	} {
		if strings.Contains(ua, b.token) {
			return b.name
		}
	}
	if strings.Contains(ua, "Safari/") && strings.Contains(ua, "Version/") {
		return "Safari"
	}
	return ""
}

// systemOf: iPhone and iPad before macOS (their Safari says "like Mac OS
// X"), Android before Linux (Android's says Linux).
func systemOf(ua string) string {
	for _, s := range []struct{ token, name string }{
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"},
		{"CrOS", "ChromeOS"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"Macintosh", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, s.token) {
			return s.name
		}
	}
	return ""
}

// sessionUserAgent is what a session keeps of a User-Agent header: at most
// latch.MaxSessionUserAgent bytes of valid UTF-8.
func sessionUserAgent(ua string) string {
	ua = strings.ToValidUTF8(ua, "\uFFFD")
	if len(ua) > latch.MaxSessionUserAgent {
		ua = ua[:latch.MaxSessionUserAgent]
		for !utf8.ValidString(ua) {
			ua = ua[:len(ua)-1]
		}
	}
	return ua
}
