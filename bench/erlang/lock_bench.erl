%% The Erlang side of `npm run bench -- lock --compare erlang`: the same workload as ours,
%% run against :global.trans on a cluster of BEAM nodes.
%%
%% N nodes x C contender processes each; contender K of node I works on resource
%% (I*C + K) rem R and loops `global:trans({{lock_bench, Res}, self()}, Fun, Nodes)` (as the
%% Elixir library calls it), where Fun records the acquire latency, checks the shared
%% invariant (a 16-byte slot per resource in a file all contenders pwrite/pread: a holder id
%% that must be 0 on entry and still ours on exit), holds HoldMs, and clears the slot.
%%
%% Started by the bench as: erl ... -run lock_bench main PeersCsv C R HoldMs WarmupMs DurationMs File OutFile
%% It writes OutFile (one fact per line: `counts ...`, `violations V`, `elapsed_us T`,
%% `missing M`, then `lat U` per grant of the measured window) and halts every node.
-module(lock_bench).
-export([main/1, contender/7]).

main([PeersCsv, C, R, Hold, Warmup, Duration, File, Out]) ->
    Peers = [list_to_atom(P) || P <- string:tokens(PeersCsv, ",")],
    ok = connect(Peers, 200),
    global:sync(),
    Nodes = [node() | Peers],
    Cn = list_to_integer(C), Rn = list_to_integer(R), H = list_to_integer(Hold),
    Self = self(),
    Pids = [spawn(N, ?MODULE, contender, [Self, NodeIx * Cn + K, (NodeIx * Cn + K) rem Rn, H, File, Nodes, Cn])
            || {NodeIx, N} <- lists:zip(lists:seq(0, length(Nodes) - 1), Nodes), K <- lists:seq(0, Cn - 1)],
    [P ! go || P <- Pids],
    timer:sleep(list_to_integer(Warmup)),
    T0 = erlang:monotonic_time(microsecond),
    [P ! measure || P <- Pids],
    timer:sleep(list_to_integer(Duration)),
    [P ! stop || P <- Pids],
    T1 = erlang:monotonic_time(microsecond),
    Results = collect(Pids, []),
    Counts = [G || {_, G, _, _} <- Results],
    Viol = lists:sum([V || {_, _, V, _} <- Results]),
    Lats = lists:append([L || {_, _, _, L} <- Results]),
    Lines = [io_lib:format("counts ~s~n", [lists:join(" ", [integer_to_list(X) || X <- Counts])]),
             io_lib:format("violations ~B~n", [Viol]),
             io_lib:format("elapsed_us ~B~n", [T1 - T0]),
             io_lib:format("missing ~B~n", [length(Pids) - length(Results)]),
             [io_lib:format("lat ~B~n", [X]) || X <- Lats]],
    ok = file:write_file(Out, Lines),
    [rpc:cast(P, erlang, halt, []) || P <- Peers],
    timer:sleep(100),
    halt(0).

connect(_, 0) -> error(cannot_connect);
connect(Peers, Tries) ->
    case lists:all(fun(P) -> net_adm:ping(P) =:= pong end, Peers) of
        true -> ok;
        false -> timer:sleep(50), connect(Peers, Tries - 1)
    end.

%% Contenders answer `stop` only between two trans calls; one stuck longer than 30 s is missing.
collect([], Acc) -> Acc;
collect(Pids, Acc) ->
    receive
        {done, Pid, Grants, Viol, Lats} -> collect(lists:delete(Pid, Pids), [{Pid, Grants, Viol, Lats} | Acc])
    after 30000 -> Acc
    end.

contender(Parent, Id, Res, Hold, File, Nodes, _C) ->
    {ok, Fd} = file:open(File, [read, write, raw, binary]),
    receive go -> ok end,
    loop(#{parent => Parent, id => Id + 1, off => Res * 16, res => Res, hold => Hold, fd => Fd, nodes => Nodes,
           measuring => false, grants => 0, viol => 0, lats => []}).

loop(S = #{parent := Parent, id := Id, off := Off, res := Res, hold := Hold, fd := Fd, nodes := Nodes}) ->
    receive
        measure -> loop(S#{measuring := true, grants := 0, viol := 0, lats := []});
        stop -> Parent ! {done, self(), maps:get(grants, S), maps:get(viol, S), maps:get(lats, S)}
    after 0 ->
        T0 = erlang:monotonic_time(microsecond),
        {Lat, V} = global:trans({{lock_bench, Res}, self()},
            fun() ->
                L = erlang:monotonic_time(microsecond) - T0,
                V1 = enter(Fd, Off, Id),
                case Hold of 0 -> ok; _ -> timer:sleep(Hold) end,
                {L, V1 + leave(Fd, Off, Id)}
            end, Nodes),
        case maps:get(measuring, S) of
            true -> loop(S#{grants := maps:get(grants, S) + 1, viol := maps:get(viol, S) + V,
                            lats := [Lat | maps:get(lats, S)]});
            false -> loop(S)
        end
    end.

%% The shared invariant: the slot is 0 when we enter (else someone else holds it) ...
enter(Fd, Off, Id) ->
    {ok, <<Holder:64, _/binary>>} = file:pread(Fd, Off, 8),
    ok = file:pwrite(Fd, Off, <<Id:64>>),
    case Holder of 0 -> 0; _ -> 1 end.

%% ... and still ours when we leave.
leave(Fd, Off, Id) ->
    {ok, <<Holder:64, _/binary>>} = file:pread(Fd, Off, 8),
    ok = file:pwrite(Fd, Off, <<0:64>>),
    case Holder of Id -> 0; _ -> 1 end.
