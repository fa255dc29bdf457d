package taxiiclient

import (
	"context"
	"net/http"
	"net/url"
)

// DeleteObject deletes object id from the collection (TAXII 2.1 §5.7):
// the given version, or every version when version is empty. An object
// the server does not hold (or will not show) is an *Error with Status
// 404.
func (c *Client) DeleteObject(ctx context.Context, id, version string) error {
	u := c.ObjectsURL + url.PathEscape(id) + "/"
	if version != "" {
		u += "?match[version]=" + url.QueryEscape(version)
	}
	_, err := c.do(ctx, http.MethodDelete, u, nil, nil)
	return err
}
