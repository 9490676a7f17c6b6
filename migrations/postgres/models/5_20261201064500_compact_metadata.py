"""messages.metadata_json: each message's metadata as the compiled GraphQL path answers
it, kept by PostgreSQL as rows are written (a stored generated column) instead of worked
out on every read, where it was a sixth of a history page's statement CPU.

Written by hand: the models cannot describe a generated column (tests/migrations/schema.py
names it), and SQLite, which has no compiled path, has no such column. The expression is
schema.compiled.compiler's `_json` of this release, frozen: jsonb's text with the spaces
orjson does not write removed (strings skipped whole), and NULL where orjson would write a
number otherwise than jsonb keeps it (the compiled path then leaves the answer to
Strawberry). Adding it rewrites the table once, under an exclusive lock.
"""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return r"""
        ALTER TABLE "messages" ADD "metadata_json" TEXT GENERATED ALWAYS AS (
            CASE WHEN "metadata" IS NULL OR "metadata" = 'null'::jsonb THEN 'null'
                WHEN "metadata"::text ~ '0\.0000|[1-9][0-9.]{18}|\.[0-9]*[0-9]0([^0-9]|$)' THEN NULL
                ELSE regexp_replace("metadata"::text, '("(?:[^"\\]|\\.)*")| ', '\1', 'g') END
        ) STORED;
        COMMENT ON COLUMN "messages"."metadata_json"
            IS 'metadata as orjson writes it; NULL: it differs from jsonb''s (schema.compiled)';"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "messages" DROP COLUMN "metadata_json";"""


MODELS_STATE = (
    "eJztXW1z2zYS/isYfTl7RnUTO3Jy9s3NyI7c6OqXnGw3vdYdGRIhCWcKUAnIiqaX/35Y8EV8"
    "F6k30wy/JBaABclnQWD3wWL5V23MDWKKg3tBrNoJ+qvG8JioPwLldVTDk8miFAok7pm64VS1"
    "0CW4J6SF+1IVDrApiCoyiOhbdCIpZ9D0lo8JZwTNRhzxGROoP8ISCSKEaiBOEZ7KEWGS9rEk"
    "As2oHKHm5zZ6InOBuFVXcoQhQYeMGIgyuKbB++qilA033/0DkyOLT4cjhBmiBgjKOZpY/Fn9"
    "gNYgT6VAkj8RdbG9AZ8yA/Xm6JEKMSXWoxI00KOY9v5L+vJx/wBueMron1PSlXxI1M0A5L//"
    "XrPbQ7XTuPbHH+oHZQb5SoTdpm8RddtGFzuVk6fugBLTCCiNGtCJLu/K+USX3d+3P17oloBX"
    "r9vn5nTMFq0ncznizGs+nVLjAGSgbkgYseCyPp2yqWk6uneL7IdSBdKaEu/GjUWBQQZ4asLI"
    "qP1jMGV9GBBIXwn+efdP59Z8zbrd65u77m3rrtutRQYS3EJI+U5RXylaDULKJMD21ze73wUg"
    "urQGFzj/1OzsHR3vawi4kENLV2q4at+0IJbYFtUqWKCs/4/gfD7CVjzObvsQ0upGV8HYLViA"
    "vHjbXPhcgLYAaW2Mv3ZNwoZypH6+ffMmBeNfmh0Ns2qlceZqerAnjWun6tCuA7wX+FrcTMC3"
    "xaZjjXFb3RNmfRLB2pXdHdZ6Asw5gGv3t63OCQLJB9b8eNW+PkHYGEfntGw6yKSCFA2EFeCb"
    "ayJq+KhqJB2T+KEelAwpwXBED9w/XuPwVw9o3DBz7kxuKdDfta9at3fNq89wubEQf5oav+Zd"
    "C2oOdek8VLp3HFKT1wn60r77hOAn+u3muhWetrx2d7/V4J7UWse7jM+62PDNw26pi1pA6wYV"
    "APoqag+JbkDvzg0XRe2vRM0uJql6XlgbWRewhcRK02rBdBmcPQ8bjQzTp2qVOH/quuAE6ppx"
    "OTD2iVQgJ4IMlu/gyWeVQUEP959m2DK6gZqFNvCEdsHIj6rjzJG8+LlDTKyfMYq/4wk1J/Rn"
    "Mn+FS9Y3d6i5pYulyzdiHS9pPYzU8Ja3dk9lBWpAiAEDbj2grhRIeEgufJ2VBSx4I/khT3pH"
    "o1Xjw3G4BDMFjuFcG64UfAdjeIrF25nMVPjngeVkRRP1CLaIhZRNq71/bJ4iriw/hNHtp+YP"
    "h41jZNAhERLxAVLOPBJENZWICiQkV0IHEYZiQ33GkAgRvgB8i67y8Cuy4GXJAjXgurZK81gD"
    "QanNOLPL8d6ZPXD8LoM5cPwu0RqAqqDFNbHIgH7NA/FCosi8jHocS80GffUYarYilqgjyZFF"
    "+nzIqCBq3niyp73crMFxFtYg7Kf4WIPjsAoUMsTMowFPYIdkzbYmjx3QYhUrk4x+eVkZEwvZ"
    "VYv5KnoPy1a8TJF5GYs886eV9ByUrLRcZC27dnkO09snskn7u7hKXWJuR0igILpRaC+U50SH"
    "TDmIkc2jePfc3fV+nZBGfHJVbOGZ5wL6B5R6dvXERNqmWvP2vPmxVfuWzKpt07u/gv/OORvQ"
    "YS3GxfdX19P8fF0EKKiWGZ39T3xm29W4P0IQQ9BsI93NKXp8Vla3avYITnhvOp4QvclPVPEc"
    "7HI2VF46R32TKodeqC56U2rG+P7buUQWKoAKb6hVbMDLsgFu+Eg+R3UhU2RXdUVfqZHFVWok"
    "e0qNiKNkv/95ozSCUiUE+jCTU3qY4pQeRp1SGzVn/soPt0+wIgGykAATbKm/pBNyFwS7yeb/"
    "ur25TphFAoJhH4H2JfofMqnNN24F9MXsDauXpEwcwGVfYgIHlAL+ggv53lXz17A2zi9vzsIz"
    "PXRwFtJMDwvSnVq5GDC/TPl2fRuZXoBGygvQiL4AziZOl7DnPEiHxMoH9lZmd5/lGMH6jHOT"
    "YJYUMeIXDKHdU5Lbmma8kt3OKGc3N5eBGeWsfRfC+f7qrKWmew2/akRtl6t9fRfCPHEtbTMZ"
    "D3byIgou4JaAfrutUT2EO/jh8O279+8+HB2/+6Ca6Lv0St6n6CEKZ8WaJ0NdXtZ8OjFW1HpQ"
    "stJ6UbQeQ6564Sa5I8KcGXPNaCcfIfXLYgp+ZcOhig4rcsBTzBBLZ0Z9AzEbQdr1vwtZoqK0"
    "MLKFERaaynQ4yj17yawjexKtI4ubJgCxj0wykIjKuJCo9TuMPVTlPJ7NVLomUvhcVS469IwO"
    "E22wWEI0xvxyFq/ixunY5tffDw+Pjt4fvjk6/tB49/5948Mbzw6LVqUZZGftn8AmC6wIrpGW"
    "TJO+Eht4+3qozODKIFrDDFZTOY/fbU5hSnwy5aNJjrKEvR0lh70dRcLe7KXKcOexCNKprGxU"
    "uBjMLFyvNMysYHgiRjxm5kvVjV9s91pZIVTU3i/WT+iGj9tGUB0xqEPYCScPG2HFUFPAYMu6"
    "ER0QqqJj0qNj+l7wxJrxMaFQjNeJ7dIwmcDYKlKgjN+RjnEHQ352sh8I+TG6ft8+i/+nUAFj"
    "W/v6MM2AuwYBRXZCDPjld+jiHL4Veoj18PyhdNx6gv2dmMQZvlb+HBp1FKjCVn9En0lss/Dv"
    "gPtcHbF58aCayrdJNn7L69tUFH/ZtJ5E8fu1LqlMSg4Tr2xPoHy+7Fa2/P0LYY4Nf7/YS2/3"
    "x5suBdvmB4sFHH+Lj3O6PFHJNUyGgg3wdQyEILZd51xk1nnCL1NNFZmmCg1Z/rPNIbHygb35"
    "0836IJ8gf+bYEPGL7G5H5M22AN7wdoicWgoPSNyYy5YISJVv4G6eHNeIka8TqibrFSz1GPHq"
    "dGNxrPOoUxamRnKYNTGiFZ8bep2qw6PV4dGXZsWXHh5Nmg+qfYeMCMfMhAGkO2qa7rTP79K2"
    "H3wqsFONrRvraPdSItRDuRcm5ryrGhA8XhOpDnR1q3sqE1pbjXJ0BldcaONi3KXEM/qG+PIt"
    "rBvYYLIlYPcJuxniT9Gj8pce0ZA+E6F3z8lX1RHiluHsTVHm5GTT7aNbWxvr+YE9sDv1e0Qh"
    "69scjoVDtfucCr9xj1jEQG8PDlxH7wA1kUW84Yb0kEYSPzmXnJi4Tx7Ynr6VfTdAwG5Fpf5D"
    "NRCnXrH6ZejduCdCJkKnurf4zEl8z7j9THWI2MQP7BlbFDNpH28HvSA3ez50p3f3XGRUwRz1"
    "uITE+mKmKvYe7ddP8rQk+Q42zoQInq3ejAsW20fku86lvM25wIage7Fq625XBmzy1l0+TmMd"
    "OmM3Tp++IhpwiLXx3iH7HdvDyHlJ9sMTx444D8ArAna2tPqubJGPxQeT6rdPEKYZgd52On3O"
    "JGEx5Mcd+Zow0n0iRYZ8IxxH69e7AL0RiSXzKI7Lm+uf3ObhALNQWgIiMUw6UcxTQ/78YmuF"
    "/L0eimk7oXxVREbJ9uazRGREja/Y1SZB8XHC5aPYt7IRZxH1pMoLyL8XF5UsH+Sb347zexA5"
    "nISQWLVrHwrTD3hyWUENSlUUdzrFLRZhwWtSseU8zFsPUbHB0bWc73Zf8U1w3ZkZ12LOBkux"
    "DU2HAXDVPaDr+8vLbBQ39ER3x3C/EryDsTrVZ0tenN/2YEvmuf3ILuW7u36lZuO9gRz5m0BK"
    "YQokzVEznYfU7tDhdlUZ11LYRIxLcoqUTYQtOympfkdBOO4w/3YuEUsHBx2FwNdONvAdlOqo"
    "P9Tt4qi/PU5W5SUX0kWmyWr3n0/QdPLAPt58uT5BBp8V5EOf8OrloSXd9mVwEndNSVacWPIw"
    "Ly8nVp1SKpvWs5xSSqNAUyIg07jP75PKqIIfd8UMjRfu786Ii4ICuzxAL/CiLmeFqsDSjQSW"
    "vkyyhXtQdYf0uRV0G2Oq62lO+1QPGUu3zBGpZgePYPFEDDumTHddR30+ZRDmhSEyCxFmCLRn"
    "fyJU1cE4Mk2QsFTfVP21H++sb6x3iFhrq1bKh4dIM8qQPQuLOvj3EBEDYx0+ViggRENHyE2l"
    "6QXEOURrXYeZuXFuDwwzw5fHBu5F35m6m9kISzRT9wffN0Pq1Znbf+7bcXATbulgNEN3LwiE"
    "rgnUmz8wsJa84DS4mkMXuEly/IF2mT+xkpJZYln2iFCTiqYoJE1ReW+rmCMFt9tj3LXKxtyk"
    "yV4dByvzjvnrIfTyDNmXdd13FKasTS5tz9km4KnuBNEBmFi2TZeNod5QwgbviiH7Ji3lyELo"
    "pROOvKrvi0wsPp5I+xh7zJZ5oj0ZkauyCkSSLCuEYOuSs/zwxspWEIchNtVzs/68G3dK78Lk"
    "ODEbhl8sBOsA5AozN29iuvh4c3922UKfO63z9m3bCfD2DG1dGZwmOq3mZRw/+DKUyyUftpi0"
    "5rUYvsWrq6eRLSbP+uXXJhJzIckY8QnoHk5TzbgFIQpTg8Lm8il6NIhUa414RCNuGg5foQZD"
    "X05hAR2o/kVcnsvNdbwKBWGSZ2JW7MKrYBc8Xa0SA+EJFzoEon19cXOCKBvwB/al2bluX/90"
    "gtRUwZR2Hlir07npnCBiWdzKZnhuOzRCgRp3ZCs5lN4TKLIaChNCn7jdlBx84hMpBcS7DkCp"
    "Pgax/XxXzoIehTj12KFPqjp1WJ06rGJtlkVYFcRPacGS/xnPlf8YuzccqE/1V7Tx0J3YTbN6"
    "LgxpMSQ5Rz06dNIOfLbhvf33JVIjp33xn1M9fcB4FXpHFCi+3hxRow4OB4OfVCAxI5O4z7Nt"
    "6SJ5PZrKcSmk49LjRkyW3WQbzm1fZANOk+P2oMcCwUKDpHqgtfnwKqq4WvNe/5rnT28Ws+SF"
    "sp8lr3iRjGuZqDrd3EupIyQ1TdQjcFbIG5x1vf7oFFRqAbK/iTWxeF95j7Ek3Zpd6sAniCIy"
    "3Cxd1EDh7TU0g15H+JkcIMjrZfEZGnIi0AzWRl8eLuGIPbA9XxySvYTa2bKEXoGp3D9Vy7C9"
    "BRZK0qVJFFU5G6nKU105G3FBHphzz8igOmSKKwH7SS31pDMI92IGctLtZl6lfdvJmnf0peut"
    "smvtYu86JbuWxHHne7LRip7w7tbqmjVlzDnPlWfB7txf23yiI//ALprty9bHk1xb2VtnFF1y"
    "M6ux5AmUgXnZtWG0etLxjecbL5ph9EoMoUwBe5X9+73YvwUKfCuapqtUMQU4vpIlVUyWZCb9"
    "0ZQ9bSIH9Tl0VCLAt5qiw4dYklfr4bnMqV1ocLlPe66ekvSnkj4TNKFEuWdO5uiAW1pHM4tK"
    "Cb6i44pBSmmJLfkIPiNGfWXSq+sQS0kPBIkhcrd5ofh8zbpjN10zdBHJzlGRuoUkdW1lRRSQ"
    "nJbZbb+7cMXt62BzaZcd7jir1+e2LzJFXlivLzDpZLYL/UKVWbjELPS43TWtwnJ+JyNiFfrH"
    "VpGONXcU1l8UeNrDiho8i9p0g0e16850w4wGT8fOOCu8I8ZAZwNHbdIxlZqB7mPTVAYGZbp8"
    "QJV6kX2NOhIjN0uYpuEjZs5mu19Q5ntG70dBrGeqfv2on1p3KA4m8/1T+3CxzRvZ+c2UGUQt"
    "p9fMTHom5jznZ03X+aJpwWyjbeVRTjaERkrB+QxRV6I0Bzd2YopWrO13wNoWZP+6SSzaH8Wt"
    "eU5N6nqHF22WrXTJil2+FuRyjL8Xr3hNjyx5mlcrfTzTmbys+kRK4aeFFtdGI8vi2mgkL65Q"
    "Fwo/Vy9VDoSd5iVE920m0+VtiunyNvoJiMRvDCVHnSd/Yyhf1HnR0N5F2PmLLmbf/g+FQAj5"
)
