from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE INDEX IF NOT EXISTS "idx_api_keys_user_id_6285a8" ON "api_keys" ("user_id");
        CREATE INDEX IF NOT EXISTS "idx_chat_sessio_model_c_315c52" ON "chat_sessions" ("model_config_id");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_chat_sessio_model_c_315c52";
        DROP INDEX IF EXISTS "idx_api_keys_user_id_6285a8";"""


MODELS_STATE = (
    "eJztXG1z4jYQ/isaPl1n0kyOBHJNOp2BHHdHm0CHkN5N7zqOsAVoYiTOlpMw1/z3rvyC3x"
    "0bMCHUXxJYaWX5WXm1+3jRj9qMa0Q3D29MYtTO0I8awzMCH0LyA1TD87kvlQKBR7rd0YIe"
    "tgSPTGFgVYBwjHWTgEgjpmrQuaCcya7XfEY4I+hhyhF/YCZSp1ggk5gmdDDPEbbElDBBVS"
    "yIiR6omKLWn110RxbmobyCxlW4BGWTTQxmMfrdIorgEwId5c1//QfElGnkkZjy69eaahDQ"
    "1hQsav/IxvmdMqZE10JIUU0OZ8sVsZjbspub7vsPdk857ZGict2aMb/3fCGmnC27WxbVDq"
    "WObJsQRgx52QCQzNJ1F3BP5MwfBMKwyHLimi/QyBhbujRH7dexxVRpBWRfSf45+c2dWqCb"
    "ovT6Q+W6M1SUWsx6cgoRG7giFfAGy1MmJGw/npxxfUBsaU1e4OJTa/DmuPmTDQE3xcSwG2"
    "24ak+2IhbYUbVN4KNs/4/hfDHFRjLOXv8I0jDRVTD2BD7I/hL34PMAKgHS2gw/KjphEzGF"
    "r2+PjjIw/qs1sGGGXjbOHJ5J50ntuU11p03i7eNrcD0F3w6zZjbGXZgTZiqJYe3pbg9r2+"
    "sUXMC1m+vO4AxJzW+s9f6q2ztDWJtRFnUt+WyQywQZFogaIOBrYmZ4Dy2CzkjyUg9rRoyg"
    "uaqH3ofXuPzhBrU+0xeuc8uAfti96lwPW1d/ysvNTPO7buPXGnZkS92WLiLSN82ImZaDoM"
    "/d4Sckv6K/+71O1G0t+w3/rsk5wZbDFcYfFKwF/LAn9VB7kjvJ+C7g5aRghNW7B2xoSqjF"
    "Xx54ThW5d8UXR9vV/PDHgOjYxja+DNztvDWnf5DFK1wCT96i96T+UvAx8jb/9TACnyeunZ"
    "H2CSi5yHidpy27eNOsPotKMMMT+5bkteWVwssqIX70F1x6BBlc2s8HkS00ItggBgK3p8kA"
    "D+vniINzQBhdf2r9XG80kUYnxBSIjxGEdhATQleBqIlMwUEpHktuaMw8IaXcfhQIAqt48m"
    "XjSVhwimPSIlFlWGsz8c7zeG8tsmye5IhqmiepUY1sCkc1c4OM6WMRiH2NXQ7d4XYM8AaQ"
    "c0pvBRnwARIcGUTlE0ZNAn7jznF7hQPLZp7AMhqxBALLZtQEgAzRi1hgqbDFeL4s57GFzK"
    "kK3NPR36/APfxUmUKBzXwVu0d1N2B5d8q7YvhXYmgPk0xLG+Se361k57BmZeVdtrIXlxcI"
    "vQMqm4y/d9eoz4TbMV4jjG4c2g+QOdEJgwQxxi8mp+be24jXCWksJwexgR+WKWBwQcG9wx"
    "0T4YRqreuL1vtO7SmdKCozu7+S/y44G9NJLSHFDzYfZOX5tkiiAD1zJvuf+IMTV2N1iuTb"
    "nlYX2cOco9t7iLqh261MwkfWbE40NFogAuKFjMvZBLJ0jlSdQkJvwhAji+oJuX85l8hDBV"
    "BzudQqNuBl2YC5we+pluSjshJVX2eXU9UVc6VGnlSpkZ4pNWKJkvP8F32RF9baQ6DruZLS"
    "ekZSWo8npQ5qrv8qDndAsSIB8pAAc2zAJ+GWQoTBbrHF79f9XooXCSlGcwSqCvQv0qnDN5"
    "YCuu+95e4lKDMP5WVfwoFLlEL5ggf5m6vWl6g1Li777ainlwO0I5YZYZMollGIAQvqrLT+"
    "dyxRi3r2fK49y7fHHgD3JY5C2H0RpCNq+wd2Kd49EDnGsG5zrhPMUuLDkGIE7RFoluVmlp"
    "LtepR2v38Z8ijt7jCC881VuwPu3oYfOlEn5er2hhHMU/fSLhPJYKdvojIFLAnot2Wt6omc"
    "wc/1tyenJ++OmyfvoIs9y6XkNMMOcTgr1jwd6v1lza25tqLVw5qV1XfF6gnk6rLcpHCRU1"
    "XA80IFPEHIEii+CKLpFJ+swVaCVsxTzwO3KrdK26qyvkaScJIKdYq25Tf7SshhDpOqd1YY"
    "oUitzkFo04FuX2Pfg9xmVd6zoehtDUKvCi/2baOpwov/o9XTwotYKYZJvhdIzYIq28vNjs"
    "qy7YZzM2EZgAe/I4WY47DW/jE5x3kq847TK/OOY5V5NmLkcU7hWVjBZyWoVzUmu+On4ttT"
    "NEgsEAcmqFY1J5HHqSrhqUp4dr6EJ80fbADaSCHOniKc4AlDSA/ATQ+6F8OsaqmACYhp4g"
    "lZk3G6ckbZI9RLZZs8uJKKyXwkMwrJAkZ7nmDqS/rH0ZDcEPbOCDhHt5AB3KIJvSem/aMu"
    "8ggDIW5oLnNEmftbL7t/nHja6MgJhNRXjxB117lMWGy2KSx26s8UdyZL9ilAZVVk1IuSUc"
    "Vy062npWVmUJvOTCUaMSjznVLg6e5yCVn4jILuGcI06nXylTht/HQCzgRhCSnqkDymrOOA"
    "yi5DvpFMtPNlGEpCY4VLy0T0st/76HWPVjNFSviIwNKlxDHPLCgLqq1VTvZ6iIBS6saqNw"
    "jpzuZ1csl53iDEY6nE3SbF8EnK+0eEllLSZhC4U1Os8Jv8uOb+Qb75H+aHU4i8GUBYq6LM"
    "Yot4ri8ghSuIakRtDViji/hFz5YohYY0/TKUNemy/SwTOojQZeEndv2fFcYXe9wUfUaGHP"
    "7k5S1zs2e7uLyftUDk6Q6ZAOaAejeXlxEbZEKeTlV6uG+SsNyxbTGTryxAQV7ySYcJI/HM"
    "qmXbQRYJqfO8P2JtIXNhCjJDfC6RllTWAzfEFGFLowLu9hzdapC1Ud28RVMO03fIQbgvVV"
    "gG0WBgVSQcgbrJgYsehyppSJ3cOwfFrHxOaptOUnmwxM0wgQZzV+h6NGP5HNgv9frx8Wn9"
    "6Lj5rnFyetp4d7Qkw+JNWaxYu/tREmOhSM9jytI5yKWtVqHOlsq7TOQACB/6Z4iyMf/GPr"
    "cGvW7v4xkCv8jAOt9YZzDoD84QMQxu7AanBqAmMWrpmc5SYZfNsDMZzszf4/JSlgGVvYB4"
    "25Ql7CY8uQQj4xeAAZ39S9w3XzTmbugFWeGAVkUKV6RwRQpv8JDmMkslWsSg6rSWdLKu05"
    "KZo2C/z3NZSrqdn88MCoX8/5d4f8133umR/AqHerzIcR7bex/RaOR5H9FopL+PkG3R8wzm"
    "haIYp/seolvOmalp5QTpEUx6OcEWTkl55SHMi25mT/8BQoyeSw=="
)
