"""Small project-level views."""


def test_favicon_redirects_to_the_static_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith("crm/favicon.svg")
    assert "max-age=86400" in response["Cache-Control"]
