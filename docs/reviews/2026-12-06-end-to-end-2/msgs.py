import os, base64, random
def weird_messages():
    M = {}
    M['8bit'] = b'From: a@b\r\nSubject: 8bit\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa4\xc3\xb6\xff\xfe\x80 raw 8bit\r\n'
    M['binary'] = b'From: a@b\r\nSubject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n' + bytes(range(1, 256)) * 4 + b'\r\n'
    M['nul'] = b'From: a@b\r\nSubject: nul\r\n\r\nabc\x00def\x00\x00ghi\r\n'
    M['barecr'] = b'From: a@b\r\nSubject: barecr\r\n\r\nline1\rline2\r\rline3\r\n'
    M['barelf'] = b'From: a@b\nSubject: barelf\n\nline1\nline2\n'
    M['mixed'] = b'From: a@b\r\nSubject: mixed\n\r\nl1\r\nl2\nl3\r\r\nl4\n\r'
    M['notrail'] = b'From: a@b\r\nSubject: notrail\r\n\r\nno newline at end'
    M['hdronly'] = b'From: a@b\r\nSubject: headers only\r\n'
    M['hdronly2'] = b'From: a@b\r\nSubject: headers only no end'
    M['tiny'] = b'x'
    M['blank'] = b'\r\n'
    M['longline'] = b'From: a@b\r\nSubject: long\r\n\r\n' + b'A' * (1_300_000) + b'\r\n'
    M['latin1hdr'] = b'From: J\xf6rg M\xfcller <j@b>\r\nSubject: Gr\xfc\xdfe \xff\xfe invalid utf8 \xc3\x28\r\n\r\nbody\r\n'
    # nested multipart
    def nest(depth):
        if depth == 0:
            return b'Content-Type: text/plain\r\n\r\nleaf\r\n'
        b = f'b{depth}'.encode()
        return b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n--' + b + b'\r\n' + nest(depth - 1) + b'\r\n--' + b + b'\r\nContent-Type: text/plain\r\n\r\nsib\r\n--' + b + b'--\r\n'
    M['nested'] = b'From: a@b\r\nSubject: nested\r\nMIME-Version: 1.0\r\n' + nest(60)
    rnd = random.Random(7)
    blob = bytes(rnd.getrandbits(8) for _ in range(6000))
    b64 = base64.b64encode(blob)
    def lines(data, n, eol):
        return eol.join(data[i:i+n] for i in range(0, len(data), n))
    M['mime_noclose'] = b'From: a@b\r\nSubject: noclose\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n' + lines(b64, 76, b'\r\n') + b'\r\n'
    M['mime_wrongb'] = b'From: a@b\r\nSubject: wrongb\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XX"\r\n\r\n--YY\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n' + lines(b64, 76, b'\r\n') + b'\r\n--YY--\r\n'
    def att(body, name):
        return b'From: a@b\r\nSubject: ' + name + b'\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="ZZ"\r\n\r\n--ZZ\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--ZZ\r\nContent-Type: application/pdf; name="x.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n' + body + b'\r\n--ZZ--\r\n'
    M['b64_badpad'] = att(lines(b64[:-2] + b'=', 76, b'\r\n'), b'badpad')
    M['b64_odd'] = att(lines(b64, 61, b'\r\n'), b'oddlen')
    M['b64_odd2'] = att(lines(b64, 72, b'\r\n') + b'\r\n' + lines(b64[:400], 50, b'\r\n'), b'oddlen-irregular')
    M['b64_lf'] = att(lines(b64, 76, b'\n'), b'lf')
    M['b64_mixed'] = att(lines(b64[:3000], 76, b'\n') + b'\r\n' + lines(b64[3000:], 76, b'\r\n'), b'mixedeol')
    M['b64_noncanon'] = att(lines(b64[:-4] + b64[-4:-2] + b'B=', 76, b'\r\n'), b'noncanonical-lastchar')  # non-zero pad bits
    M['b64_spaces'] = att(lines(b64, 76, b' \r\n'), b'trailing spaces')
    M['b64_lower_ws'] = att(b'  ' + lines(b64, 76, b'\r\n  '), b'leading ws')
    M['b64_garbage'] = att(lines(b64, 76, b'\r\n') + b'\r\n!!!garbage***', b'garbage')
    M['b64_nofinal'] = b'From: a@b\r\nSubject: nofinal\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="ZZ"\r\n\r\n--ZZ\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n' + lines(b64, 76, b'\r\n')
    M['b64_upper_cte'] = att(lines(b64, 76, b'\r\n'), b'cte').replace(b'Content-Transfer-Encoding: base64', b'Content-Transfer-Encoding: BASE64')
    M['b64_76plus'] = att(lines(b64, 100, b'\r\n'), b'100 chars')
    M['b64_oneline'] = att(b64, b'oneline')
    return M, blob

def sis_messages():
    import base64, random
    rnd = random.Random(11)
    blob = bytes(rnd.getrandbits(8) for _ in range(5000))
    b64 = base64.b64encode(blob)
    def lines(data, n, eol): return eol.join(data[i:i+n] for i in range(0, len(data), n))
    M = {}
    part = lambda body, ct=b'application/octet-stream', extra=b'': b'Content-Type: ' + ct + b'\r\nContent-Transfer-Encoding: base64\r\n' + extra + b'\r\n' + body
    M['end_no_nl'] = b'From: a@b\r\nSubject: end-no-nl\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n' + part(lines(b64, 76, b'\r\n')) + b'\r\n--B--'
    M['single_part'] = b'From: a@b\r\nSubject: single\r\nMIME-Version: 1.0\r\n' + part(lines(b64, 76, b'\r\n')) + b'\r\n'
    M['single_part_nonl'] = b'From: a@b\r\nSubject: single2\r\nMIME-Version: 1.0\r\n' + part(lines(b64, 76, b'\r\n'))
    inner = b'From: in@b\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="I"\r\n\r\n--I\r\n' + part(lines(b64, 76, b'\r\n')) + b'\r\n--I--\r\n'
    M['rfc822'] = b'From: a@b\r\nSubject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="O"\r\n\r\n--O\r\nContent-Type: message/rfc822\r\n\r\n' + inner + b'\r\n--O--\r\n'
    M['two_same'] = b'From: a@b\r\nSubject: two\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="T"\r\n\r\n--T\r\n' + part(lines(b64, 76, b'\r\n')) + b'\r\n--T\r\n' + part(lines(b64, 76, b'\r\n')) + b'\r\n--T--\r\n'
    M['last_line_full'] = b'From: a@b\r\nSubject: full\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="F"\r\n\r\n--F\r\n' + part(lines(base64.b64encode(blob[:76*3*10//4]), 76, b'\r\n')) + b'\r\n--F--\r\n'
    M['trailing_blank'] = b'From: a@b\r\nSubject: blank\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="G"\r\n\r\n--G\r\n' + part(lines(b64, 76, b'\r\n')) + b'\r\n\r\n\r\n--G--\r\n'
    M['preamble_epilogue'] = b'From: a@b\r\nSubject: pe\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="P"\r\n\r\npreamble text\r\n--P\r\n' + part(lines(b64, 76, b'\r\n')) + b'\r\n--P--\r\nepilogue\r\n'
    M['ws_boundary'] = b'From: a@b\r\nSubject: wsb\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="W"\r\n\r\n--W   \r\n' + part(lines(b64, 76, b'\r\n')) + b'\r\n--W--  \r\n'
    M['lf_only'] = (b'From: a@b\nSubject: lfonly\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="L"\n\n--L\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n' + lines(b64, 76, b'\n') + b'\n--L--\n')
    M['cd_params'] = b'From: a@b\r\nSubject: cd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="C"\r\n\r\n--C\r\n' + part(lines(b64, 76, b'\r\n'), b'image/png; name="=?utf-8?q?=C3=A4.png?="', b'Content-Disposition: attachment;\r\n\tfilename*=utf-8\'\'%C3%A4.png\r\n') + b'\r\n--C--\r\n'
    M['qp_big'] = b'From: a@b\r\nSubject: qp\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="Q"\r\n\r\n--Q\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n' + b'=00=01' * 2000 + b'\r\n--Q--\r\n'
    M['empty_b64'] = b'From: a@b\r\nSubject: emptyb64\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="E"\r\n\r\n--E\r\n' + part(b'') + b'\r\n--E--\r\n'
    M['b64_64'] = b'From: a@b\r\nSubject: 64\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="S"\r\n\r\n--S\r\n' + part(lines(b64, 64, b'\r\n')) + b'\r\n--S--\r\n'
    M['b64_4'] = b'From: a@b\r\nSubject: 4\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="S"\r\n\r\n--S\r\n' + part(lines(b64[:2000], 4, b'\r\n')) + b'\r\n--S--\r\n'
    M['b64_lastshort_nopad'] = b'From: a@b\r\nSubject: nopad\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="S"\r\n\r\n--S\r\n' + part(lines(base64.b64encode(blob[:4000] + b'xy').rstrip(b'='), 76, b'\r\n')) + b'\r\n--S--\r\n'
    return M
