"""``/receipt/{token}``: the public payment receipt (or bill) a subscriber opens from WhatsApp.

No login and no app shell: a light, printable page. Unknown tokens get the
same friendly page whether or not they ever existed.
"""

from __future__ import annotations

import base64

import reflex as rx

from fibernode.services import ratelimit, receipts
from fibernode.state.branding import BrandingState

RATE_LIMIT = 30  # receipt views per IP per minute
RATE_WINDOW_S = 60


def _line(label: str, value: rx.Var, test_id: str = "") -> rx.Component:
    return rx.cond(value != "", rx.el.div(rx.el.span(label), rx.el.span(
        value, data_testid=test_id or None), class_name="fn-receipt-line"))


class ReceiptState(rx.State):
    """The receipt's visible fields (toggled-off ones never reach the browser)."""

    found: bool = False
    ready: bool = False
    limited: bool = False
    receipt: dict[str, str] = {}
    qr_src: str = ""
    pdf_url: str = ""

    def _token(self) -> str:
        return self.router.url.path.rstrip("/").rsplit("/", 1)[-1]

    @rx.event
    def load(self):
        """Look the token up (rate-limited per IP)."""
        ip = self.router.session.client_ip or "unknown"
        decision = ratelimit.hit("receipt", ip, RATE_LIMIT, RATE_WINDOW_S)
        self.ready = True
        if not decision.allowed:
            self.limited, self.found, self.receipt = True, False, {}
            return
        self.limited = False
        token = self._token()
        view = receipts.get_receipt(token)
        if view is None:
            self.found, self.receipt, self.qr_src = False, {}, ""
            return
        self.found = True
        self.receipt = receipts.display_fields(view)
        self.qr_src = "data:image/svg+xml;base64," + base64.b64encode(
            view.qr_svg.encode()).decode()
        self.pdf_url = f"/api/receipt/{token}.pdf"


S = ReceiptState


def _not_found() -> rx.Component:
    return rx.el.div(
        rx.el.div(
            rx.icon("file_question", size=44, color="#94a3b8"),
            rx.el.h1(rx.cond(S.limited, "Terlalu banyak permintaan", "Nota tidak ditemukan"),
                     class_name="fn-receipt-title", data_testid="receipt-missing"),
            rx.el.p(rx.cond(S.limited,
                            "Silakan tunggu sebentar lalu muat ulang halaman ini.",
                            "Periksa kembali tautan nota Anda, atau hubungi penyedia internet "
                            "Anda."), style={"color": "#64748b"}),
            class_name="fn-receipt-head",
        ),
        class_name="fn-receipt",
    )


def _receipt() -> rx.Component:
    r = S.receipt
    paid = r["is_paid"] == "1"
    return rx.el.div(
        rx.el.div(
            rx.cond(r["logo_url"] != "", rx.el.img(src=r["logo_url"], alt="Logo",
                                                   class_name="fn-receipt-logo",
                                                   data_testid="receipt-logo")),
            rx.cond(r["company_name"] != "", rx.el.div(r["company_name"],
                                                       style={"font_weight": "600"},
                                                       data_testid="receipt-company")),
            rx.el.h1(rx.cond(paid, "Nota Pembayaran", "Tagihan Internet"),
                     class_name="fn-receipt-title"),
            rx.el.span(rx.cond(paid, "LUNAS", "BELUM LUNAS"),
                       class_name=rx.cond(paid, "fn-receipt-badge paid",
                                          "fn-receipt-badge unpaid"),
                       data_testid="receipt-status"),
            class_name="fn-receipt-head",
        ),
        rx.el.div(
            _line("Pelanggan", r["customer_name"], "receipt-customer"),
            _line("No. WhatsApp", r["customer_phone"], "receipt-phone"),
            _line("NIK", r["nik"], "receipt-nik"),
            _line("Area", r["area"], "receipt-area"),
            _line("Paket", r["package"], "receipt-package"),
            _line("Periode", r["period"], "receipt-period"),
            _line("Jatuh tempo", r["due_date"]),
            _line("Harga paket", r["amount"]),
            _line("Diskon", r["discount"], "receipt-discount"),
            _line("Metode bayar", r["payment_method"], "receipt-method"),
            _line("Tanggal bayar", r["paid_at"], "receipt-paid-at"),
            _line("Dicatat oleh", r["paid_by"], "receipt-paid-by"),
            class_name="fn-receipt-lines",
        ),
        rx.el.div(rx.el.span(rx.cond(paid, "Total dibayar", "Total tagihan")),
                  rx.el.span(r["total"], data_testid="receipt-total"),
                  class_name="fn-receipt-total"),
        rx.cond(~paid & (r["bank_account"] != ""), rx.el.div(
            rx.el.strong("Transfer ke"),
            rx.el.div(r["bank_name"], " ", r["bank_account"]),
            rx.el.div("a.n. ", r["bank_holder"]),
            class_name="fn-receipt-bank", data_testid="receipt-bank",
        )),
        rx.el.div(
            rx.el.img(src=S.qr_src, alt="QR verifikasi", class_name="fn-receipt-qr"),
            rx.el.div(
                rx.el.div("Kode verifikasi", style={"color": "#64748b", "font_size": ".8rem"}),
                rx.el.div(r["verification_code"], class_name="fn-receipt-code",
                          data_testid="receipt-code"),
                rx.el.div("Pindai QR untuk mencocokkan nota ini.",
                          style={"color": "#64748b", "font_size": ".8rem"}),
            ),
            class_name="fn-receipt-verify",
        ),
        rx.cond(r["footer"] != "", rx.el.p(r["footer"], class_name="fn-receipt-footer")),
        rx.el.div(
            rx.el.button("Cetak", on_click=rx.call_script("window.print()"), type="button",
                         class_name="fn-chip"),
            rx.el.a("Unduh PDF", href=S.pdf_url, class_name="fn-chip",
                    style={"display": "inline-flex", "align_items": "center",
                           "text_decoration": "none"}, download=True),
            class_name="fn-receipt-actions",
        ),
        class_name="fn-receipt",
        data_testid="receipt",
    )


@rx.page(route="/receipt/[token]", title="Nota Pembayaran",
         on_load=[BrandingState.load, ReceiptState.load])
def receipt_page() -> rx.Component:
    """The public receipt."""
    return rx.el.div(
        rx.cond(S.ready, rx.cond(S.found, _receipt(), _not_found())),
        class_name="fn-receipt-page",
    )
