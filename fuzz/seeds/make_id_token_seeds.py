"""Write the id_token fuzz seeds: a throw-away RSA key's JWKS (seeds/jwks.json) and tokens
signed with it, good and malformed, into corpus/id_token/. Run from fuzz/:
python3 seeds/make_id_token_seeds.py  (needs the `cryptography` package)."""

import base64
import json
import pathlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(obj) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
numbers = key.public_key().public_numbers()
n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
jwks = {"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
                  "n": b64(n), "e": b64(numbers.e.to_bytes(3, "big"))}]}
pathlib.Path("seeds/jwks.json").write_text(json.dumps(jwks, indent=1) + "\n")


def sign(header, claims) -> str:
    signing_input = f"{part(header)}.{part(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


claims = {"iss": "https://idp.example.com", "sub": "u-1", "aud": "teamgate",
          "nonce": "fuzz-nonce", "iat": 1700000000, "exp": 4102444800,
          "email": "alice@example.com", "email_verified": True,
          "groups": ["g-1", {"id": "g-2"}], "_claim_names": {"groups": "src1"},
          "_claim_sources": {"src1": {"endpoint": "https://graph.example.com"}}}
rs256 = {"alg": "RS256", "kid": "k1", "typ": "JWT"}
good = sign(rs256, claims)
seeds = {
    "good": good,
    "crit": sign({**rs256, "crit": ["exp"], "exp": 1}, claims),
    "typ_at_jwt": sign({**rs256, "typ": "at+jwt"}, claims),
    "no_kid": sign({"alg": "RS256"}, claims),
    "unknown_kid": sign({**rs256, "kid": "k2"}, claims),
    "aud_list_azp": sign(rs256, {**claims, "aud": ["teamgate", "other"], "azp": "other"}),
    "alg_none": f"{part({'alg': 'none'})}.{part(claims)}.",
    "alg_hs256": f"{part({'alg': 'HS256', 'kid': 'k1'})}.{part(claims)}.{b64(b'x' * 32)}",
    "jwe_five_segments": f"{part({'alg': 'RSA-OAEP', 'enc': 'A256GCM'})}.{b64(b'k')}.{b64(b'iv')}.{b64(b'ct')}.{b64(b'tag')}",
    "non_json_payload": f"{part(rs256)}.{b64(b'not json')}.{good.rsplit('.', 1)[1]}",
    "payload_array": f"{part(rs256)}.{part([1, 2, 3])}.{good.rsplit('.', 1)[1]}",
}
for name, token in seeds.items():
    pathlib.Path(f"corpus/id_token/{name}").write_text(token)
