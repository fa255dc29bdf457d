package federation

// FeedGroupPages is feedGroupPages, for the tests of federation_test.
const FeedGroupPages = feedGroupPages
