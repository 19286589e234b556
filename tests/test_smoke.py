from conftest import ORIGIN, set_cookies, sign_up


def test_sign_up_and_get_session(client):
    account = sign_up(client)
    r = client.get("/api/auth/get-session")
    assert r.status_code == 200
    data = r.get_json()
    assert data["user"]["email"] == account.email
    assert data["session"]["token"] == account.token
    r = client.post("/api/auth/sign-out", json={}, headers=ORIGIN)
    assert r.get_json() == {"success": True}
    assert set_cookies(r)["better-auth.session-token"]["max-age"] == "0"
    assert client.get("/api/auth/get-session").get_data() == b"null"
