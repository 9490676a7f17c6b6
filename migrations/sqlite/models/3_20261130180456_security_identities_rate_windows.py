from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "rate_windows" (
    "key" VARCHAR(200) NOT NULL PRIMARY KEY,
    "hits" BIGINT NOT NULL,
    "expires_at" TIMESTAMP NOT NULL
) /* Requests counted for one limit and caller in one fixed window, shared by every */;
CREATE INDEX IF NOT EXISTS "idx_rate_window_expires_23276c" ON "rate_windows" ("expires_at");
        ALTER TABLE "users" ADD "issuer" VARCHAR(255);
        ALTER TABLE "users" ADD "disabled_at" TIMESTAMP;
        ALTER TABLE "users" ADD "subject" VARCHAR(255);
        CREATE UNIQUE INDEX "uid_users_issuer_0f3d62" ON "users" ("issuer", "subject");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "uid_users_issuer_0f3d62";
        ALTER TABLE "users" DROP COLUMN "issuer";
        ALTER TABLE "users" DROP COLUMN "disabled_at";
        ALTER TABLE "users" DROP COLUMN "subject";
        DROP TABLE IF EXISTS "rate_windows";"""


MODELS_STATE = (
    "eJztXW1z2joW/isaPrUzubktCWk32dkZktJb9ualS8j27m3uOAIL0MZI1JJDmG7/+x7JNn"
    "4nNm9xqL+0QdKR7eeI8/JwJH+vjblJLLF/I4hdO0bfawyPCfwRad9DNTyZBK2qQeKepQc6"
    "MEK34J6QNu5LaBxgSxBoMono23QiKWdq6DUfE84Imo444lMmUH+EJRJECBggThB25IgwSf"
    "tYEoGmVI5Q83Mb3ZOZQNzeAznCkKBDRkxEmbqmyftwUcqG65/+lsmRzZ3hCGGGqKkE5QxN"
    "bP4AH9RoJU+lQJLfE7jYqwF3mIl6M3RHhXCIfQeCJroTTu+/pC/vXu+rG3YY/eYQQ/IhgZ"
    "tRkH/9WnPHq25vcO2vv+ADZSZ5JMId07cJ3LZpYK9zcm8MKLHMiNKoqSbR7YacTXTbzU37"
    "w0c9UuHVM/rccsYsGD2ZyRFn8+GOQ819JaP6hoQRW102pFPmWJane7/JfShokLZD5jduBg"
    "0mGWDHUiuj9veBw/pqQSB9JfXP4T+8WwsNM4zLq65x3eoaRi2xkNQtxJTvNfVB0bAIKZMK"
    "tu8/3HkDQHRrTV3g7FOz8+rg6LWGgAs5tHWnhqv2QwtiiV1RrYIAZf1/AuezEbbTcfbHx5"
    "CGG10GY78hADn4tvnw+QBtANLaGD8aFmFDOYKPb9+8WYDxv5sdDTOM0jhzMA+u0bj0uupu"
    "n8I7wNfmVga+LeaMNcZtuCfM+iSBtS+7Pay1ASy4gGs3163OMVKSt6z54aJ9eYywOU7atH"
    "w6yKWCBRqIKyBkaxJq+AA9ko5J+lKPSsaUYHqi+/4fL3H5wwOaV8yaecZtAfTd9kXrutu8"
    "+KwuNxbim6Xxa3ZbqqeuW2ex1ldHMTXNJ0Ff2t1PSH1Ef15dtuJmaz6u+2dN3RP4Om4wPj"
    "WwGbLDfquPWkTrJhUK9GXUHhNdg969Gy6L2l+Imn1MFuo5iDbyOrBAYimzWjJdRq1nvdHI"
    "YT5hVKb91H1RA+qHcQUwDolUIGeCrCLfwX0oKlMNPdy/n2LbNCI9gTbwhBoqyE+q49ST/P"
    "h7h1hYP2MSfy8Tak7o72T2Al3WD3+p+a2B6wqtWC9LWg0jWN7y2p1pl4BSi4zXedayS3aN"
    "6+N4C2Z4qB9JXVtdKbqsUlLvYMFlJ9/hpf10/t1EPYJtYiMI03RCi60TxCGYQRhdf2r+Um"
    "8cIZMOiZCIDxDkp5A8w1CJqEBCchDaTyTda5ozJS9OpMAqXDYgaa3y3+fNf2HBGa5Kizi4"
    "qNR68rOn8d6aizs6zOHhjg4zHZzqigYRE5sM6GMRiAOJMlMN8Dg2WIM+PAZYK2KLPSQ5sk"
    "mfDxkVBOzGvWv2CifCR3kS4XjoHUqEj+IqAGSIVUQDc4Et8g+bMh5bYHoqoiEb/d0lGiws"
    "pAHOfBm9x2UrqqHMVINNHvj9UnqOSlZaLrOW/bi8QOgdElln/F1epT4Rbid4jSi6SWg/Qu"
    "ZEhwwSxMTvIempuf9D7suENJGTQ7ONp/MUMLyg4NnhiYl0Q7Xm9VnzQ6v2I5so2mR2f6H+"
    "O+NsQIe1lBQ/3L23KM/XTQoFGJkz2f/Ep25cjfsjpH4Wb7aRnuYE3T1A1A3D7lQS3nPGE6"
    "J/tybQPFNxORtCls5R36KQ0AuYoudQKyX338wl8lABVMyXWsUGPC8b4FdEFEtUA5kyp6pL"
    "5kqNPKlSIztTaiQSJff7X7TwICq1g0DXcyWl9QVJaT2ZlLqoefarONwhwYoEyEMCTLANf0"
    "mviiwKdpPN/nl9dZlhRSKC8RyB9iX6H7KoyzduBPTAeivvJSkT++qyz2HAFUqRfMGH/NVF"
    "84+4Ns7Or07jll5NcBrTTA8LYjh2IQYsLLN7P2Q2cn0BGgu+AI3kF8D7Eccg7KEI0jGx3Q"
    "N7I9Y9FDkmsD7l3CKYZRVBhAVjaPdAclNmZt6yXYtyenV1HrEop+1uDOebi9MWmHsNPwyi"
    "bsrVvuzGMM/0pW0m08HOdqIqBdwQ0G83taqH6g5+qb89fHf4/uDo8D0M0Xc5b3m3QA9JOC"
    "vWPBvq3WXNnYm5pNajkpXWy6L1FHJ1Xm5SuMipKuB5pgKeMGQpFF8M0WyKT21WMcJazFPP"
    "A4+qXKXWqqqvUSScokLd3Snqk74ScpnDtOqdJWYoUquzF3E6MOxr4nOY26zKe9YUva1A6F"
    "Xhxa45miq8+Bm1nhVeJEoxBPlWIDULi2wvN3uzKd2uOTeTjg14qB2hRaicqNTuMTkHeSrz"
    "DrIr8w4SlXkaMfI4ofBdWMJmpYhXNSblsVNJ9xQPEgvEgSmiVc1J7OtUlfBUJTylL+HJsg"
    "drgDZWiLOjCKdYwgjSHTDTnfZZd1G1VEgFRAg8JCsyThfuLDuEeqwCdmLNDBhA8HhFpDpq"
    "qms90y6htdHyO29xpZXeBetuQdldaIk/TcddKbLMlVBMGvaPnjlBd5Av3aEhfSBCb4Ejjz"
    "AR4rbp8WyUeTvj9PgkTbfWmVOPoPEGeFZBpXeam4s2u9V6hncnc64uRPxV1N2zUnfFMvmt"
    "J/GbzDfXnccrNBJQ5juDxpctc8Fd9ASa9jHCNG518hWErf3sGc4kYSkJfZc8ZqzjkEiZIV"
    "9L3t76oxtJ2RNlXvO0/fzq8jd/eLz2K1bwSCRWJiWJ+cLyu7DYSsV3L4c22UiVXfV7S7ax"
    "eZnMe57fW5KxVKq3yVB8mvDu0cYbKQC0CTypkEucYJCU3D3I13+MQTSFyJsBRKUqgjGxiB"
    "WtAOalGKoxsRVgjS/iZz2JYyOkrQiKdlYkF3ezqGovRi5Gv7Grb8JMLvakKq4Y6XL4Jy/L"
    "m5trLOPyflIDsW93RAVwD+jy5vw8poOFkGfTlT7u66R3S+YWF/KVBSjIcz5sMWmnnvA179"
    "tbREJaPO+W3yYSMyHJGPGJQlpRWVNuyxHCjkklPO0JujMha6OWuEMjDrfvkoPwXH3p2MSE"
    "iftSpJUJrm/iPNWD8RJBizy4x+osfQr2KR1m8mCpzjCFBvNW6Go04+Y5sL/V6wcH7+pvDo"
    "7eNw7fvWu8fzMnw5Jdi1ix0/ZvihiLRHo+U5bNQc51tQx1NhcuM5EDIHy8OkaUDfgt+9Ls"
    "XLYvfztGYBcZaOeWtTqdq84xIrbN7XJwagBqGqOWnenMBcqshtJkOOPAx+WlLEMiOwHxti"
    "lL8CY8vWBlwX7JkMzuJe7rL7HzHHpBVjgkVZHCFSlckcJPkcIFdnttslSipVz+ZzyzOI5G"
    "02n9C/MVHTwYE3do3syFIS2GJOeoR4dowG2E0WcX3ut/nSNYOe2P/znR5kOtV3VmEDYRle"
    "pYIWruqYSDqY/qXOEpmciULGZDFyma0VSJSykTlx43UyiP7BjOH1/mAK6ma4L0oscCKUeD"
    "JDxQvrRk20Fd5fMqn7dVnxeuqExxebGCy2yPlyjyzEXV6eHERFoaPlLLQj0CqwDNF+ee9j"
    "/qMsHheROb9yF7TCXpVpzylt2ythTg6ZSDU6YD/nKJPHVQvzftVM06wg9kH3Whz+ZTNOTq"
    "hXrKN6rR7rD5+f637JVq9esXtQvFDNwnuFflgal8fQJueABpA1xD7Ti+J2Qi9Lv1NIkCnd"
    "MRdJ4g7+1+gtwy756RSUEILgQC7pPa8KRTaFMv3/N2+OT20qHfMDTvGNohVO1KfubSRgmQ"
    "LEsrzoW3eCKb7TDFBxZEuda5uXT5RE/+ln1sts9bH469L0hJGEWf3MwbLM0FdoF52XZgtP"
    "w+x7VvcSxbYPRCAqFcexyr+PdniX+r+qgNRA9VLU9JanlCFm3ksPt1bHs7UxPtEOAb3fUW"
    "Qiwrq53j+VRSG2jw6Zz2DJ6S9B1JHwiaUALpmbdZLZKW7qGpTaVUuaKXiqldbBLbUp8Vj4"
    "MXQ4H0QJAUIneTF0rfHacn9jfHqSlW2/lWkbrbInVdZSUUkL0nzh9f7YpL2xXnccd5sz5/"
    "fJkp8tJmfRGjkzsuDAtVYeETYeGc210xKtzNrfmJqDC8tsr0lp0OYP0FwNMZVjLgCXoXBz"
    "wwzpjqgTkDno67IUigPneYVFWu3NYctUXHVGoGuo8tCwIMynT7gIJ6kXuNPSQg/gi9FicR"
    "5qx3+oAyf2X2fhXEfqDw6Vf91HpCsT+ZvT5RfL7wiHP3DFAIg6jtzZqbSc/FnHvv+cxbwO"
    "UN37lXx65xm1t2IDQCBRcLRH2JnTnkbyuhaMXa/gSsbUl+v24Sm/ZHaT7P61no73Aw5ilP"
    "l63Yp31BocT4Z8mKV8zIss38Eq+tepYXVm3PuTYaeZxro5HtXFVf/I09kyIIe8N3EN3NvB"
    "U86wiY7Krz7CNgtvAesBdedv6szuzH/wEFrucS"
)
