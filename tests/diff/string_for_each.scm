(define out '())
(string-for-each (lambda (c) (set! out (cons (char-upcase c) out))) "abc")
(write out) (newline)
